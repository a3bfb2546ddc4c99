"""Two-step verification from the account: a consumer turns an authenticator app on or off;
anyone with a second step makes new recovery codes.

Turning the app on reuses the staff enrolment (``two_factor``): each attempt has its own
secret, derived from the portal's key and bound to this signed-in session, and stored on
the account only once the first code checks out. Recovery codes are shown once, on the
page that answers the form (never stored in the session, never shown again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vrm_portal.accounts import recovery_codes, second_factor, step_up, two_factor
from vrm_portal.accounts.forms import ConfirmForm, TwoFactorCodeForm
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.passkeys.models import Passkey
from vrm_portal.accounts.passkeys.service import list_passkeys
from vrm_portal.extensions import db, limiter
from vrm_portal.web import client_info, form_status

bp = Blueprint("two_step", __name__, url_prefix="/account/two-step")

#: Session key of the current enrolment attempt (see ``two_factor.Enrolment``).
ENROLMENT_KEY = "account_totp_enrolment"


@bp.before_request
@login_required  # type: ignore[untyped-decorator]
def _require_sign_in() -> None:
    """Signed-in only."""


def _code_limit() -> str:
    return str(current_app.config["LOGIN_PER_EMAIL_RATE_LIMIT"])


def _account_key() -> str:
    return f"two-step-account:{current_user.account.id}"


def _account() -> Account:
    account: Account = current_user.account
    return account


def _methods() -> ResponseReturnValue:
    return redirect(url_for("social.methods"))


@dataclass(frozen=True)
class SignInSecurity:
    """The passkeys and second step of the signed-in account, for the Sign-in methods page."""

    passkeys: list[Passkey]
    two_factor: bool
    staff: bool
    recovery_codes: int


@bp.app_context_processor
def _inject_sign_in_security() -> dict[str, Any]:
    """``sign_in_security()`` for the Sign-in methods page (evaluated only when called)."""

    def sign_in_security() -> SignInSecurity | None:
        if not current_user.is_authenticated:
            return None
        account = _account()
        return SignInSecurity(
            passkeys=list_passkeys(db.session, account),
            two_factor=account.has_two_factor,
            staff=account.is_staff,
            recovery_codes=recovery_codes.remaining_codes(db.session, account),
        )

    return {"sign_in_security": sign_in_security}


# ---- the authenticator app ------------------------------------------------------------


def _key() -> bytes:
    key = current_app.secret_key
    if not key:
        raise RuntimeError("the secret key is not set")
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _binding() -> str:
    """What an enrolment attempt belongs to: this signed-in session."""
    return f"account-session:{current_user.auth_session.id}"


def _held_enrolment() -> two_factor.Enrolment | None:
    held = session.get(ENROLMENT_KEY)
    if not isinstance(held, dict):
        return None
    nonce, expires = held.get("nonce"), held.get("expires")
    if not isinstance(nonce, str) or type(expires) is not int:
        return None
    enrolment = two_factor.Enrolment(_binding(), nonce, datetime.fromtimestamp(expires, UTC))
    return enrolment if two_factor.is_current(enrolment, sign_in=_binding()) else None


def _new_enrolment(account: Account) -> two_factor.Enrolment:
    enrolment = two_factor.start_enrolment(account, sign_in=_binding())
    session[ENROLMENT_KEY] = {
        "nonce": enrolment.nonce,
        "expires": int(enrolment.expires_at.timestamp()),
    }
    return enrolment


@bp.route("/app", methods=["GET", "POST"])
@limiter.limit(_code_limit, methods=["POST"], key_func=_account_key)
def turn_on() -> ResponseReturnValue:
    account = _account()
    if account.has_two_factor:
        flash(_("Two-step verification is already on for your account."), "info")
        return _methods()
    if not step_up.recently_confirmed():
        return step_up.confirm_first(url_for("two_step.turn_on"))
    enrolment = _held_enrolment()
    form = TwoFactorCodeForm()
    if form.validate_on_submit():
        try:
            if enrolment is None:
                raise two_factor.EnrolmentExpired()
            two_factor.confirm_enrolment(
                db.session,
                account,
                enrolment,
                form.code.data,
                key=_key(),
                sign_in=_binding(),
                client=client_info(),
            )
        except two_factor.EnrolmentExpired:
            enrolment = None
            form.form_errors.append(
                _(
                    "This key has expired. Add the new key below to your app, then type "
                    "the code it shows."
                )
            )
        except two_factor.InvalidCode:
            form.code.errors.append(
                _("This code is not right. Check the time on your phone and try the newest code.")
            )
        else:
            session.pop(ENROLMENT_KEY, None)
            codes = recovery_codes.replace_codes(db.session, account, client=client_info())
            return render_template("two_step/recovery_codes.html", codes=codes, turned_on=True)
    if enrolment is None:
        enrolment = _new_enrolment(account)
    secret = two_factor.enrolment_secret(_key(), account, enrolment)
    return render_template(
        "two_step/turn_on.html",
        form=form,
        secret=secret,
        secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
        qr_code=two_factor.qr_code_data_uri(two_factor.provisioning_uri(account, secret)),
    ), form_status(form)


@bp.route("/app/off", methods=["GET", "POST"])
def turn_off() -> ResponseReturnValue:
    account = _account()
    if not account.has_two_factor:
        return _methods()
    if account.is_staff:
        flash(
            _("Staff need two-step verification. If you lost your phone, ask an administrator."),
            "warning",
        )
        return _methods()
    if not step_up.recently_confirmed():
        return step_up.confirm_first(url_for("two_step.turn_off"))
    form = ConfirmForm()
    if form.validate_on_submit():
        second_factor.turn_off_two_factor(db.session, account, client=client_info())
        flash(
            _("Two-step verification is off. Your recovery codes no longer work."),
            "success",
        )
        return _methods()
    return render_template("two_step/turn_off.html", form=form)


# ---- recovery codes -------------------------------------------------------------------


@bp.route("/recovery-codes", methods=["GET", "POST"])
def new_codes() -> ResponseReturnValue:
    account = _account()
    if not second_factor.second_step_required(account):
        flash(_("Recovery codes come with two-step verification: turn it on first."), "info")
        return _methods()
    if not step_up.recently_confirmed():
        return step_up.confirm_first(url_for("two_step.new_codes"))
    form = ConfirmForm()
    if form.validate_on_submit():
        codes = recovery_codes.replace_codes(db.session, account, client=client_info())
        return render_template("two_step/recovery_codes.html", codes=codes, turned_on=False)
    return render_template(
        "two_step/new_codes.html",
        form=form,
        remaining=recovery_codes.remaining_codes(db.session, account),
    )
