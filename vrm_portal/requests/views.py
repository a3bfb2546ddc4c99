"""Deleting the account: the request (after re-authentication), the grace period, the end.

A consumer with a password proves it is them with the password. One who signs in only
through a provider must have signed in within the last few minutes
(``ERASURE_REAUTH_WINDOW``); otherwise the page offers to sign in again and come back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import format_date, lazy_ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, logout_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from vrm_portal.accounts import errors as account_errors
from vrm_portal.accounts import password_budget
from vrm_portal.accounts import service as accounts_service
from vrm_portal.accounts.forms import ConfirmForm
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.social import client as social_client
from vrm_portal.accounts.social.models import LinkedIdentity
from vrm_portal.clock import utcnow
from vrm_portal.consent.signing import current_notary
from vrm_portal.extensions import db, limiter
from vrm_portal.requests import emails, erasure, service
from vrm_portal.requests.forms import LATER, NOW, DeleteAccountForm, DeleteNowForm
from vrm_portal.requests.models import DataRequest
from vrm_portal.web import form_status

bp = Blueprint("erasure", __name__, url_prefix="/account/delete")


def _reauth_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _without_password() -> bool:
    """An account without a password re-authenticates by a recent sign-in: no guessing."""
    return current_user.is_authenticated and current_user.account.password_hash is None


@bp.app_context_processor
def _inject_scheduled_erasure() -> dict[str, Any]:
    """The warning banner on every page while the account's erasure is scheduled."""
    if not has_request_context() or not current_user.is_authenticated:
        return {"scheduled_erasure": None}  # emails are rendered outside requests too
    return {"scheduled_erasure": service.pending_erasure(db.session, current_user.account.id)}


def _identity_providers(account: Account) -> list[str]:
    """The configured providers the account can sign in again with."""
    linked = db.session.scalars(
        select(LinkedIdentity.provider)
        .where(LinkedIdentity.account_id == account.id)
        .order_by(LinkedIdentity.provider)
    )
    configured = social_client.configured_providers()
    return [name for name in linked if name in configured]


def _recently_signed_in(now: datetime) -> bool:
    started: datetime = current_user.auth_session.created_at
    window: timedelta = current_app.config["ERASURE_REAUTH_WINDOW"]
    return now - started <= window


def _proven(form: DeleteAccountForm | DeleteNowForm, account: Account, now: datetime) -> bool:
    """Re-authentication: the password, or (without one) a fresh sign-in."""
    if account.password_hash is None:
        if _recently_signed_in(now):
            return True
        form.form_errors.append(
            _("For your safety, sign in again, then come back to delete your account.")
        )
        return False
    try:
        accounts_service.reauthenticate(db.session, account, form.password.data)
    except account_errors.WrongCurrentPassword:
        form.password.errors.append(_("Your password is not right."))
        return False
    return True


def _prepare(form: DeleteAccountForm | DeleteNowForm, account: Account) -> None:
    if account.password_hash is None:
        del form.password
    if isinstance(form, DeleteAccountForm):
        days = current_app.config["ERASURE_GRACE"].days
        form.when.choices = [
            SelectChoice(
                LATER,
                lazy_ngettext(
                    "In %(num)d day, so that I can change my mind",
                    "In %(num)d days, so that I can change my mind",
                    days,
                ),
            ),
            SelectChoice(NOW, _l("Now")),
        ]


def _page(
    account: Account,
    *,
    form: DeleteAccountForm | None = None,
    now_form: DeleteNowForm | None = None,
) -> ResponseReturnValue:
    pending = service.pending_erasure(db.session, account.id)
    if pending is None:
        form = form or DeleteAccountForm()
        _prepare(form, account)
    else:
        now_form = now_form or DeleteNowForm()
        _prepare(now_form, account)
    shown = form if pending is None else now_form
    status = form_status(shown) if shown is not None else 200
    return render_template(
        "requests/delete.html",
        account=account,
        pending=pending,
        form=form,
        now_form=now_form,
        cancel_form=ConfirmForm(),
        providers=_identity_providers(account) if account.password_hash is None else [],
        provider_names={
            name: provider.display_name
            for name, provider in social_client.configured_providers().items()
        },
        grace_days=current_app.config["ERASURE_GRACE"].days,
    ), status


@bp.before_request
@login_required  # type: ignore[untyped-decorator]
def _require_sign_in() -> None:
    """Every page here is personal: signed-in only (but the farewell page)."""


@bp.get("/")
def start() -> ResponseReturnValue:
    return _page(current_user.account)


@bp.post("/")
@limiter.limit(_reauth_limit)
@password_budget.limited(password_budget.signed_in_account_key, exempt_when=_without_password)
def request_erasure() -> ResponseReturnValue:
    account: Account = current_user.account
    if account.is_staff:
        flash(_("Staff accounts cannot be deleted here: ask an administrator."), "error")
        return redirect(url_for("erasure.start"))
    pending = service.pending_erasure(db.session, account.id)
    if pending is not None:
        flash(_already_scheduled(pending), "error")
        return redirect(url_for("erasure.start"))
    form = DeleteAccountForm()
    _prepare(form, account)
    now = utcnow()
    if not form.validate_on_submit() or not _proven(form, account, now):
        return _page(account, form=form)
    if form.when.data == NOW:
        return _erase(account, now)
    try:
        scheduled = service.schedule_erasure(
            db.session, account, now, grace=current_app.config["ERASURE_GRACE"]
        )
    except service.ErasureAlreadyPending as exc:
        flash(_already_scheduled(exc.request), "error")
        return redirect(url_for("erasure.start"))
    emails.send_scheduled(account, scheduled)
    flash(
        _(
            "Your account will be deleted on %(day)s. You can change your mind until then.",
            day=format_date(scheduled.due_at, "long"),
        ),
        "success",
    )
    return redirect(url_for("erasure.start"))


@bp.post("/now")
@limiter.limit(_reauth_limit)
@password_budget.limited(password_budget.signed_in_account_key, exempt_when=_without_password)
def erase_now() -> ResponseReturnValue:
    """During the grace period: do not wait."""
    account: Account = current_user.account
    if service.pending_erasure(db.session, account.id) is None:
        flash(_("Your account is not scheduled for deletion."), "error")
        return redirect(url_for("erasure.start"))
    form = DeleteNowForm()
    _prepare(form, account)
    now = utcnow()
    if not form.validate_on_submit() or not _proven(form, account, now):
        return _page(account, now_form=form)
    return _erase(account, now)


@bp.post("/cancel")
def cancel() -> ResponseReturnValue:
    account: Account = current_user.account
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("erasure.start"))
    try:
        service.cancel_erasure(db.session, account, utcnow())
    except service.NoPendingErasure:
        flash(_("Your account is not scheduled for deletion."), "info")
        return redirect(url_for("erasure.start"))
    emails.send_cancelled(account)
    flash(_("Your account will not be deleted. Welcome back."), "success")
    return redirect(url_for("account.overview"))


def _already_scheduled(pending: DataRequest) -> str:
    assert pending.due_at is not None
    message: str = _(
        "Your account is already scheduled for deletion on %(day)s. "
        "Keep it, or delete it now, below.",
        day=format_date(pending.due_at, "long"),
    )
    return message


def _erase(account: Account, now: datetime) -> ResponseReturnValue:
    farewell = erasure.erase_now(db.session, current_notary(), account, now)
    emails.send_farewell(farewell)
    db.commit()
    session.clear()
    logout_user()
    return redirect(url_for("farewell.done", reference=farewell.reference))


farewell_bp = Blueprint("farewell", __name__)


@farewell_bp.get("/account/deleted")
def done() -> ResponseReturnValue:
    """The page after the erasure: the account is gone, so it is public."""
    reference = request.args.get("reference", "")[:36]
    return render_template("requests/deleted.html", reference=reference)
