"""The privacy office console's blueprint: who may see it, its front page, its routes.

Only staff with the ``dpo`` role use the console. Administrators see its operational
part (the ledger verifications, read only). Everyone else (consumers, anonymous
visitors, brand operators, API tokens, which carry no browser session) gets a 404 on
every console address: the console does not exist for them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, has_request_context, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from vrm_portal.accounts.models import StaffRole
from vrm_portal.clock import utcnow
from vrm_portal.extensions import csrf, db
from vrm_portal.privacy_office import log_views, operations_views, queue, verification

bp = Blueprint("privacy_office", __name__, url_prefix="/office")
# The console does not exist for outsiders: its 404 must come before the app-wide CSRF
# check (a 400 would reveal it). Every form of the console checks its own CSRF token
# (``FlaskForm``), so each POST is still protected.
csrf.exempt(bp)

#: What an administrator may open (reading only).
ADMIN_ENDPOINTS = frozenset(
    {
        "privacy_office.verification",
        "privacy_office.run",
        "privacy_office.run_progress",
    }
)


@bp.before_request
def only_the_privacy_office() -> None:
    if not current_user.is_authenticated:
        abort(404)
    role = current_user.account.staff_role
    if role == StaffRole.DPO.value:
        return
    if (
        role == StaffRole.ADMIN.value
        and request.endpoint in ADMIN_ENDPOINTS
        and request.method in ("GET", "HEAD")
    ):
        return
    abort(404)


@bp.app_context_processor
def _console_nav() -> dict[str, Any]:
    """Whether the signed-in account is staff with a console (the header links to it)."""
    if not has_request_context() or not current_user.is_authenticated:
        return {"staff_console_url": None}
    from vrm_portal.staff_home import home_url

    account = current_user.account
    return {"staff_console_url": home_url(account) if account.staff_role else None}


def can_start_verification() -> bool:
    return bool(current_user.account.staff_role == StaffRole.DPO.value)


@bp.get("/")
def index() -> ResponseReturnValue:
    session = db.session
    today = utcnow().date()
    return render_template(
        "privacy_office/index.html",
        counts=queue.counts(session, today),
        last_run=verification.last_finished(session),
        running=verification.running_run(session),
    )


log_views.register(bp)
operations_views.register(bp)
