"""The emails of an erasure: scheduled, cancelled, and the final confirmation."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from vrm_portal.accounts.models import Account
from vrm_portal.mail import send_later
from vrm_portal.requests.erasure import Farewell
from vrm_portal.requests.models import DataRequest
from vrm_portal.web import public_url


def send_scheduled(account: Account, request: DataRequest) -> None:
    send_later(
        account.email,
        _l("Your account will be deleted"),
        "erasure_scheduled",
        locale=account.locale,
        time_zone=account.time_zone,
        due_at=request.due_at,
        reference=request.reference,
        link=public_url("erasure.start"),
        export_link=public_url("export.page"),
    )


def send_cancelled(account: Account) -> None:
    send_later(
        account.email,
        _l("Your account will not be deleted"),
        "erasure_cancelled",
        locale=account.locale,
        time_zone=account.time_zone,
        link=public_url("account.change_password"),
    )


def send_farewell(farewell: Farewell) -> None:
    """The final confirmation, sent once the erasure is committed (the address is gone
    from the database by then: ``farewell`` carries it)."""
    send_later(
        farewell.email,
        _l("Your account has been deleted"),
        "erasure_done",
        locale=farewell.locale,
        time_zone=farewell.time_zone,
        reference=farewell.reference,
        erased_at=farewell.erased_at,
        brands_told=farewell.brands_told,
    )
