"""Where each kind of staff member lands: their console, never the consumer pages."""

from __future__ import annotations

from flask import url_for
from werkzeug.routing import BuildError

from vrm_portal.accounts.models import Account, StaffRole

#: The console's front page for each staff role.
HOME_ENDPOINTS: dict[str, str] = {
    StaffRole.DPO.value: "privacy_office.index",
    StaffRole.ADMIN.value: "admin.index",
    StaffRole.BRAND_OPERATOR.value: "brand_space.index",
}


def home_endpoint(account: Account) -> str | None:
    """The endpoint of ``account``'s console, or None for a consumer."""
    if account.staff_role is None:
        return None
    return HOME_ENDPOINTS.get(account.staff_role)


def home_url(account: Account) -> str | None:
    """The URL of ``account``'s console, or None for a consumer (or a console not built)."""
    endpoint = home_endpoint(account)
    if endpoint is None:
        return None
    try:
        return url_for(endpoint)
    except BuildError:
        return None
