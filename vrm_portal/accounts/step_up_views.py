"""The "Confirm it is you" page: the password, a passkey, or a new sign-in with a provider."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from vrm_portal.accounts import errors, password_budget, service, step_up
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.passkeys import service as passkeys
from vrm_portal.accounts.passkeys import web as ceremonies
from vrm_portal.accounts.security_forms import ConfirmAccessForm, PasskeyAnswerForm
from vrm_portal.accounts.social import client as social_client
from vrm_portal.accounts.social.models import LinkedIdentity
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db, limiter
from vrm_portal.web import client_info, safe_next

bp = Blueprint("step_up", __name__, url_prefix="/account/confirm-access")

PURPOSE = "confirm"


@bp.before_request
@login_required  # type: ignore[untyped-decorator]
def _require_sign_in() -> None:
    """Signed-in only."""


def _limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _next() -> str:
    return safe_next(request.values.get("next")) or url_for("social.methods")


def _providers(account: Account) -> list[tuple[str, str]]:
    """(name, display name) of the configured providers linked to the account."""
    configured = social_client.configured_providers()
    linked = db.session.scalars(
        select(LinkedIdentity.provider)
        .where(LinkedIdentity.account_id == account.id)
        .order_by(LinkedIdentity.provider)
    )
    return [(name, configured[name].display_name) for name in linked if name in configured]


def _page(
    *,
    form: ConfirmAccessForm | None = None,
    passkey_form: PasskeyAnswerForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    account: Account = current_user.account
    form = form or ConfirmAccessForm()
    passkey_form = passkey_form or PasskeyAnswerForm()
    return render_template(
        "step_up/confirm.html",
        form=form,
        passkey_form=passkey_form,
        has_password=account.password_hash is not None,
        has_passkeys=passkeys.has_passkeys(db.session, account),
        providers=_providers(account),
        next_url=_next(),
        window_minutes=int(step_up.WINDOW.total_seconds() // 60),
    ), status


@bp.get("")
def confirm() -> ResponseReturnValue:
    if step_up.recently_confirmed():
        return redirect(_next())
    return _page()


@bp.post("")
@limiter.limit(_limit)
@password_budget.limited(password_budget.signed_in_account_key)
def confirm_password() -> ResponseReturnValue:
    account: Account = current_user.account
    form = ConfirmAccessForm()
    if account.password_hash is None:
        return redirect(url_for("step_up.confirm", next=_next()))
    if form.validate_on_submit():
        try:
            service.reauthenticate(db.session, account, form.password.data)
        except errors.WrongCurrentPassword:
            form.password.errors.append(_("Your password is not right."))
        else:
            step_up.mark_confirmed()
            return redirect(_next())
    return _page(form=form, status=422)


@bp.post("/passkey/options")
@limiter.limit(_limit)
def passkey_options() -> ResponseReturnValue:
    options, ceremony = passkeys.authentication_options(
        db.session,
        ceremonies.relying_party(),
        purpose=PURPOSE,
        account=current_user.account,
        now=utcnow(),
    )
    ceremonies.keep(ceremony)
    return ceremonies.options_response(options)


@bp.post("/passkey")
@limiter.limit(_limit)
def confirm_passkey() -> ResponseReturnValue:
    account: Account = current_user.account
    form = PasskeyAnswerForm()
    if form.validate_on_submit():
        ceremony = ceremonies.take(PURPOSE)
        try:
            if not form.credential.data:
                raise passkeys.PasskeyRejected("missing")
            if ceremony is None:
                raise passkeys.PasskeyRejected("expired")
            passkeys.authenticate(
                db.session,
                ceremony,
                form.credential.data,
                ceremonies.relying_party(),
                purpose=PURPOSE,
                account=account,
                now=utcnow(),
                client=client_info(),
            )
        except passkeys.PasskeyRejected as exc:
            form.form_errors.append(ceremonies.refusal(exc.reason))
        else:
            step_up.mark_confirmed()
            return redirect(_next())
    return _page(passkey_form=form, status=422)
