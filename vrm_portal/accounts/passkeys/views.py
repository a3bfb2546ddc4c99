"""Passkey pages: adding, renaming and removing one's passkeys, and signing in with one.

The ceremonies need JavaScript (``static/passkeys.js``): it asks an ``.../options``
endpoint for the WebAuthn options (JSON), calls the browser, puts the answer in the
form's hidden ``credential`` field and submits the form. Everything else is plain forms.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vrm_portal.accounts import step_up
from vrm_portal.accounts.browser_session import sign_in
from vrm_portal.accounts.forms import ConfirmForm, LoginForm
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.passkeys import service as passkeys
from vrm_portal.accounts.passkeys import web as ceremonies
from vrm_portal.accounts.passkeys.models import Passkey
from vrm_portal.accounts.security_forms import (
    AddPasskeyForm,
    PasskeySignInForm,
    RenamePasskeyForm,
)
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db, limiter
from vrm_portal.web import client_info, form_status, safe_next

bp = Blueprint("passkeys", __name__)

#: Options endpoints: the sign-in page asks for options at each visit (passkey autofill).
OPTIONS_LIMIT = "30 per minute;300 per hour"

STILL_NEEDED = {
    "last_method": lambda: _(
        "This passkey is your only way to sign in, so it cannot be removed. Add another "
        "passkey, link a provider or set a password (Forgot your password?) first."
    ),
    "staff_second_step": lambda: _(
        "Staff need a second step at sign-in: add another passkey or set up an "
        "authenticator app before removing this one."
    ),
}


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _account() -> Account:
    account: Account = current_user.account
    return account


def _methods() -> ResponseReturnValue:
    return redirect(url_for("social.methods"))


# ---- adding a passkey ---------------------------------------------------------------------


@bp.route("/account/passkeys/new", methods=["GET", "POST"])
@login_required  # type: ignore[untyped-decorator]
@limiter.limit(_login_limit, methods=["POST"])
def add() -> ResponseReturnValue:
    if not step_up.recently_confirmed():
        return step_up.confirm_first(url_for("passkeys.add"))
    account = _account()
    form = AddPasskeyForm()
    if request.method == "GET" and not form.name.data:
        count = len(passkeys.list_passkeys(db.session, account))
        form.name.data = _("Passkey %(number)s", number=count + 1)
    if form.validate_on_submit():
        ceremony = ceremonies.take("register")
        try:
            if not form.credential.data:
                raise passkeys.PasskeyRejected("missing")
            if ceremony is None:
                raise passkeys.PasskeyRejected("expired")
            passkey = passkeys.register_passkey(
                db.session,
                account,
                ceremony,
                form.credential.data,
                form.name.data,
                ceremonies.relying_party(),
                now=utcnow(),
                client=client_info(),
            )
        except passkeys.PasskeyRejected as exc:
            form.form_errors.append(ceremonies.refusal(exc.reason))
        else:
            flash(
                _("Your passkey “%(name)s” is ready: you can sign in with it.", name=passkey.name),
                "success",
            )
            return _methods()
    return render_template("passkeys/add.html", form=form), form_status(form)


@bp.post("/account/passkeys/new/options")
@login_required  # type: ignore[untyped-decorator]
@limiter.limit(OPTIONS_LIMIT)
def registration_options() -> ResponseReturnValue:
    if not step_up.recently_confirmed():
        abort(403)
    options, ceremony = passkeys.registration_options(
        db.session, _account(), ceremonies.relying_party(), now=utcnow()
    )
    ceremonies.keep(ceremony)
    return ceremonies.options_response(options)


# ---- renaming and removing ----------------------------------------------------------------


def _own_passkey(passkey_id: int) -> Passkey:
    try:
        return passkeys.get_passkey(db.session, _account(), passkey_id)
    except passkeys.PasskeyNotFound:
        abort(404)


@bp.route("/account/passkeys/<int:passkey_id>/rename", methods=["GET", "POST"])
@login_required  # type: ignore[untyped-decorator]
def rename(passkey_id: int) -> ResponseReturnValue:
    passkey = _own_passkey(passkey_id)
    form = RenamePasskeyForm()
    if request.method == "GET":
        form.name.data = passkey.name
    if form.validate_on_submit():
        passkeys.rename_passkey(
            db.session, _account(), passkey.id, form.name.data, client=client_info()
        )
        flash(_("The passkey is now called “%(name)s”.", name=passkey.name), "success")
        return _methods()
    return render_template("passkeys/rename.html", form=form, passkey=passkey), form_status(form)


@bp.route("/account/passkeys/<int:passkey_id>/remove", methods=["GET", "POST"])
@login_required  # type: ignore[untyped-decorator]
def remove(passkey_id: int) -> ResponseReturnValue:
    passkey = _own_passkey(passkey_id)
    if not step_up.recently_confirmed():
        return step_up.confirm_first(url_for("passkeys.remove", passkey_id=passkey.id))
    account = _account()
    problem = passkeys.removal_problem(db.session, account, passkey)
    form = ConfirmForm()
    if form.validate_on_submit() and problem is None:
        try:
            passkeys.remove_passkey(db.session, account, passkey.id, client=client_info())
        except passkeys.PasskeyStillNeeded as exc:  # a race with another tab
            problem = exc.reason
        else:
            flash(_("The passkey “%(name)s” is removed.", name=passkey.name), "success")
            return _methods()
    return render_template(
        "passkeys/remove.html",
        form=form,
        passkey=passkey,
        problem=STILL_NEEDED[problem]() if problem else None,
    ), (409 if problem and request.method == "POST" else 200)


# ---- signing in with a passkey alone ------------------------------------------------------


@bp.post("/login/passkey/options")
@limiter.limit(OPTIONS_LIMIT)
def sign_in_options() -> ResponseReturnValue:
    # Nothing in the session (see ``passkeys.sign_in_ceremony``): no cookie is set here.
    options, _ceremony = passkeys.authentication_options(
        db.session, ceremonies.relying_party(), purpose="sign_in", account=None, now=utcnow()
    )
    return ceremonies.options_response(options)


@bp.post("/login/passkey")
@limiter.limit(_login_limit)
def sign_in_with_passkey() -> ResponseReturnValue:
    """The same session start as a password sign-in; no second step after it (user
    verification is required: the passkey is two factors), staff included."""
    form = PasskeySignInForm()
    next_url = safe_next(form.passkey_next.data)
    if current_user.is_authenticated:
        return redirect(next_url or url_for("account.overview"))
    problem = None
    if not form.validate_on_submit():
        problem = _("The form expired. Please try again.")
    else:
        try:
            if not form.passkey_credential.data:
                raise passkeys.PasskeyRejected("missing")
            passkey = passkeys.authenticate(
                db.session,
                passkeys.sign_in_ceremony(form.passkey_credential.data),
                form.passkey_credential.data,
                ceremonies.relying_party(),
                purpose="sign_in",
                account=None,
                now=utcnow(),
                client=client_info(),
            )
        except passkeys.PasskeyRejected as exc:
            problem = ceremonies.refusal(exc.reason) + " " + _("You are not signed in.")
        else:
            account = passkey.account
            if account.is_verified:
                sign_in(account, remember=form.passkey_remember.data == "1")
                flash(_("You are signed in."), "success")
                return redirect(next_url or url_for("account.overview"))
            problem = _("Your email address is not confirmed yet: sign in with your password.")
    # The sign-in page again, with the problem and without passkey autofill this time
    # (an autofill that fails at once would only fail again).
    login_form = LoginForm(formdata=None)
    login_form.next.data = next_url or ""
    login_form.form_errors.append(problem)
    return render_template(
        "accounts/login.html", form=login_form, passkey_autofill=False
    ), form_status(login_form)
