"""The console's blueprint and who may enter it.

Every route answers 404 to anyone not admitted, signed out or not, so the console's
existence tells an outsider nothing. Admins are admitted everywhere; DPOs only to the
review of text drafts and to the audit trail. The CSRF check runs after the admission
(the blueprint is exempt from the global check), so a stranger's POST is a 404 too.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, request
from flask_login import current_user

from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.extensions import csrf

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: Endpoints a DPO may use besides the admins.
DPO_ENDPOINTS = frozenset(
    {
        "admin.drafts",
        "admin.draft",
        "admin.approve_draft",
        "admin.reject_draft",
        "admin.audit",
        "admin.audit_export",
    }
)


def admitted_roles(endpoint: str | None) -> frozenset[str]:
    if endpoint in DPO_ENDPOINTS:
        return frozenset({StaffRole.ADMIN.value, StaffRole.DPO.value})
    return frozenset({StaffRole.ADMIN.value})


def staff_member() -> Account:
    """The signed-in staff member (the blueprint admitted them)."""
    account: Account = current_user.account
    return account


@bp.before_request
def admit() -> None:
    if not current_user.is_authenticated:
        abort(404)
    account: Account = current_user.account
    if account.disabled_at is not None or account.staff_role not in admitted_roles(
        request.endpoint
    ):
        abort(404)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


@bp.after_request
def no_store(response):  # type: ignore[no-untyped-def]
    """Console pages hold staff-only data: never cached by the browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def known_endpoints() -> dict[str, Any]:
    """The app's endpoints, so that links to other consoles appear only once they exist."""
    return {"known_endpoints": frozenset(current_app.view_functions)}
