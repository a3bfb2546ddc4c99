"""Other ways through the second sign-in step: a passkey, or a recovery code.

They share the pending sign-in of the code page (``two_factor_views``): the password
was right, the session starts here once the second step succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, render_template, session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext

from vrm_portal.accounts import recovery_codes
from vrm_portal.accounts.browser_session import PENDING_KEY
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.passkeys import service as passkeys
from vrm_portal.accounts.passkeys import web as ceremonies
from vrm_portal.accounts.passkeys.views import OPTIONS_LIMIT
from vrm_portal.accounts.security_forms import PasskeyAnswerForm, RecoveryCodeForm
from vrm_portal.accounts.two_factor_views import (
    _code_limit,
    _expired,
    _finish,
    _pending_account,
    _pending_key,
)
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db, limiter
from vrm_portal.web import client_info, form_status

bp = Blueprint("second_step", __name__, url_prefix="/login/two-factor")

PURPOSE = "second_step"
#: Below this many unused recovery codes, the sign-in says to make new ones.
FEW_CODES = 3


@dataclass(frozen=True)
class SecondSteps:
    """The ways through the second step that the pending sign-in's account has."""

    app: bool
    passkey: bool
    recovery_code: bool
    staff: bool


def _second_steps(account: Account) -> SecondSteps:
    return SecondSteps(
        app=account.has_two_factor,
        passkey=passkeys.has_passkeys(db.session, account),
        recovery_code=recovery_codes.has_codes(db.session, account),
        staff=account.is_staff,
    )


@bp.app_context_processor
def _inject_second_steps() -> dict[str, Any]:
    """``second_steps()`` for the pages of the second step (evaluated only when called)."""

    def second_steps() -> SecondSteps | None:
        if not isinstance(session.get(PENDING_KEY), dict):
            return None
        found = _pending_account()
        return _second_steps(found[0]) if found else None

    return {"second_steps": second_steps}


# ---- a passkey ----------------------------------------------------------------------------


@bp.route("/passkey", methods=["GET", "POST"])
@limiter.limit(_code_limit, methods=["POST"], key_func=_pending_key)
def passkey() -> ResponseReturnValue:
    found = _pending_account()
    if found is None:
        return _expired()
    account, pending = found
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
            return _finish(account, pending)
    return render_template(
        "second_step/passkey.html", form=form, steps=_second_steps(account)
    ), form_status(form)


@bp.post("/passkey/options")
@limiter.limit(OPTIONS_LIMIT)
def passkey_options() -> ResponseReturnValue:
    found = _pending_account()
    if found is None:
        return {"error": "expired"}, 409
    options, ceremony = passkeys.authentication_options(
        db.session, ceremonies.relying_party(), purpose=PURPOSE, account=found[0], now=utcnow()
    )
    ceremonies.keep(ceremony)
    return ceremonies.options_response(options)


# ---- a recovery code ----------------------------------------------------------------------


@bp.route("/recovery", methods=["GET", "POST"])
@limiter.limit(_code_limit, methods=["POST"], key_func=_pending_key)
def recovery() -> ResponseReturnValue:
    found = _pending_account()
    if found is None:
        return _expired()
    account, pending = found
    form = RecoveryCodeForm()
    if form.validate_on_submit():
        try:
            left = recovery_codes.use_code(
                db.session, account, form.code.data, client=client_info()
            )
        except recovery_codes.InvalidRecoveryCode:
            form.code.errors.append(
                _("This is not one of your recovery codes, or it was used already.")
            )
        else:
            response = _finish(account, pending)
            message = ngettext(
                "You used a recovery code: %(num)d is left.",
                "You used a recovery code: %(num)d are left.",
                left,
            )
            if left < FEW_CODES:
                message += " " + _("Make new recovery codes on the Sign-in methods page.")
            flash(message, "warning" if left < FEW_CODES else "info")
            return response
    return render_template(
        "second_step/recovery.html", form=form, steps=_second_steps(account)
    ), form_status(form)
