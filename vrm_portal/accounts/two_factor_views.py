"""The second sign-in step for staff: enrol an authenticator app, then give a code."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from vrm_portal.accounts import two_factor
from vrm_portal.accounts.browser_session import PENDING_KEY, PENDING_SECONDS, sign_in
from vrm_portal.accounts.forms import TwoFactorCodeForm
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.second_factor import second_step_required
from vrm_portal.extensions import db, limiter
from vrm_portal.web import client_info, form_status, safe_next

bp = Blueprint("two_factor", __name__, url_prefix="/login/two-factor")

#: Session key of the current enrolment attempt (see ``two_factor.Enrolment``).
ENROLMENT_KEY = "totp_enrolment"


def _pending_account() -> tuple[Account, dict[str, Any]] | None:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    if time.time() - float(pending.get("since", 0)) > PENDING_SECONDS:
        session.pop(PENDING_KEY, None)
        return None
    account = db.session.get(Account, pending.get("account_id"))
    if account is None or not second_step_required(account):
        session.pop(PENDING_KEY, None)
        return None
    return account, pending


def _pending_key() -> str:
    pending = session.get(PENDING_KEY)
    account_id = pending.get("account_id") if isinstance(pending, dict) else None
    return f"two-factor:{account_id}"


def _code_limit() -> str:
    return str(current_app.config["LOGIN_PER_EMAIL_RATE_LIMIT"])


def _enrolment_key() -> bytes:
    key = current_app.secret_key
    if not key:
        raise RuntimeError("the secret key is not set")
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _held_enrolment(sign_in_id: str) -> two_factor.Enrolment | None:
    """This pending sign-in's enrolment attempt, while it is fresh; None otherwise."""
    held = session.get(ENROLMENT_KEY)
    if not isinstance(held, dict):
        return None
    sign_in, nonce, expires = held.get("sign_in"), held.get("nonce"), held.get("expires")
    if not isinstance(sign_in, str) or not isinstance(nonce, str) or type(expires) is not int:
        return None
    enrolment = two_factor.Enrolment(sign_in, nonce, datetime.fromtimestamp(expires, UTC))
    return enrolment if two_factor.is_current(enrolment, sign_in=sign_in_id) else None


def _new_enrolment(account: Account, sign_in_id: str) -> two_factor.Enrolment:
    """A new attempt, with its own secret; it replaces any earlier one in the session."""
    enrolment = two_factor.start_enrolment(account, sign_in=sign_in_id)
    session[ENROLMENT_KEY] = {
        "sign_in": enrolment.sign_in,
        "nonce": enrolment.nonce,
        "expires": int(enrolment.expires_at.timestamp()),
    }
    return enrolment


def _expired() -> ResponseReturnValue:
    flash(_("Your sign-in took too long. Please sign in again."), "warning")
    return redirect(url_for("auth.login"))


def _finish(
    account: Account, pending: dict[str, Any], *, news: str | None = None
) -> ResponseReturnValue:
    """Start the real session; messages are flashed after it, as sign-in clears the old one."""
    next_url = safe_next(pending.get("next"))
    session.pop(PENDING_KEY, None)
    sign_in(account, remember=bool(pending.get("remember")))
    if news:
        flash(news, "success")
    flash(_("You are signed in."), "success")
    return redirect(next_url or url_for("account.overview"))


@bp.route("/setup", methods=["GET", "POST"])
@limiter.limit(_code_limit, methods=["POST"], key_func=_pending_key)
def setup() -> ResponseReturnValue:
    found = _pending_account()
    if found is None:
        return _expired()
    account, pending = found
    if account.has_two_factor:
        return redirect(url_for("two_factor.verify"))
    sign_in_id = pending.get("id")
    if not isinstance(sign_in_id, str):
        session.pop(PENDING_KEY, None)
        return _expired()
    enrolment = _held_enrolment(sign_in_id)
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
                key=_enrolment_key(),
                sign_in=sign_in_id,
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
            return _finish(
                account, pending, news=_("Two-step verification is on for your account.")
            )
    if enrolment is None:
        enrolment = _new_enrolment(account, sign_in_id)
    secret = two_factor.enrolment_secret(_enrolment_key(), account, enrolment)
    uri = two_factor.provisioning_uri(account, secret)
    return render_template(
        "accounts/two_factor_setup.html",
        form=form,
        secret=secret,
        secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
        qr_code=two_factor.qr_code_data_uri(uri),
    ), form_status(form)


@bp.route("", methods=["GET", "POST"])
@limiter.limit(_code_limit, methods=["POST"], key_func=_pending_key)
def verify() -> ResponseReturnValue:
    found = _pending_account()
    if found is None:
        return _expired()
    account, pending = found
    if not account.has_two_factor:
        return redirect(url_for("two_factor.setup"))
    form = TwoFactorCodeForm()
    if form.validate_on_submit():
        try:
            two_factor.verify_code(db.session, account, form.code.data, client=client_info())
        except two_factor.InvalidCode:
            form.code.errors.append(
                _("This code is not right, or was already used. Wait for the next code.")
            )
        else:
            return _finish(account, pending)
    return render_template("accounts/two_factor_verify.html", form=form), form_status(form)
