"""Signing up, in and out; emailed links for verification and password reset."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, logout_user

from vrm_portal.accounts import auth_sessions, email_tokens, errors, password_budget, service
from vrm_portal.accounts.browser_session import begin_second_factor, sign_in
from vrm_portal.accounts.forms import (
    ConfirmForm,
    ForgotPasswordForm,
    LoginForm,
    RegisterForm,
    ResetPasswordForm,
    password_problem_message,
)
from vrm_portal.accounts.jobs import client_payload
from vrm_portal.accounts.messages import token_problem, token_problem_status
from vrm_portal.accounts.models import Account, TokenPurpose
from vrm_portal.accounts.second_factor import second_step_required
from vrm_portal.extensions import db, limiter
from vrm_portal.jobs.service import enqueue
from vrm_portal.mail import send_later
from vrm_portal.web import client_info, form_status, public_url, safe_next

bp = Blueprint("auth", __name__)


def _config_limit(name: str) -> str:
    return str(current_app.config[name])


def _posted_email_key() -> str:
    """The rate-limit key of the posted address: every spelling of one account counts once."""
    return password_budget.address_key(request.form.get("email") or "")


def _login_limit() -> str:
    return _config_limit("LOGIN_RATE_LIMIT")


def _email_limit() -> str:
    return _config_limit("EMAIL_RATE_LIMIT")


def _hours(name: str) -> int:
    return int(current_app.config[name].total_seconds() // 3600)


def send_verification(account: Account, token: email_tokens.IssuedToken | None = None) -> None:
    """Mail a verification link to the account's address (a fresh one unless ``token``)."""
    if token is None:
        token = email_tokens.issue_email_token(
            db.session,
            account,
            TokenPurpose.VERIFY_EMAIL,
            current_app.config["EMAIL_VERIFICATION_TTL"],
        )
    send_later(
        account.email,
        _l("Confirm your email address"),
        "verify_email",
        locale=account.locale,
        time_zone=account.time_zone,
        link=public_url("auth.verify_email", token=token.secret),
        expires_hours=_hours("EMAIL_VERIFICATION_TTL"),
    )


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_email_limit, methods=["POST"])
def register() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("account.overview"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            prepared = service.prepare_registration(form.email.data, form.password.data)
        except errors.PasswordRejected as exc:
            form.password.errors.append(password_problem_message(exc.reason))
        else:
            # The same work whatever the address: the job decides what to send.
            enqueue(
                db.session,
                "accounts.registration",
                {
                    "email": prepared.email,
                    "password_hash": prepared.password_hash,
                    "locale": str(get_locale()),
                    "client": client_payload(client_info()),
                },
            )
            return redirect(url_for("auth.check_email", reason="verify"))
    return render_template("accounts/register.html", form=form), form_status(form)


@bp.get("/check-email")
def check_email() -> ResponseReturnValue:
    reason = request.args.get("reason", "verify")
    texts = {
        "verify": (
            _("Check your email"),
            _(
                "We have sent a message to the address you gave. Follow the link in it "
                "to confirm your address, then sign in."
            ),
        ),
        "reset": (
            _("Check your email"),
            _(
                "If an account uses this address, we have sent it a link to choose a new "
                "password. The link works once, within one hour."
            ),
        ),
        "link": (
            _("Check your email"),
            _(
                "We have sent a link to your address. Follow it to link the provider to "
                "your account; it works once, within one hour."
            ),
        ),
        "change": (
            _("Confirm your new address"),
            _(
                "We have sent a confirmation link to the new address. Your address changes "
                "only when you follow it while signed in."
            ),
        ),
    }
    heading, message = texts.get(reason, texts["verify"])
    return render_template("accounts/check_email.html", heading=heading, message=message)


@bp.route("/verify-email/<token>", methods=["GET", "POST"])
def verify_email(token: str) -> ResponseReturnValue:
    signed_in = current_user.account if current_user.is_authenticated else None
    form = ConfirmForm()
    try:
        if form.validate_on_submit():
            account = service.verify_email(
                db.session, token, signed_in=signed_in, client=client_info()
            )
            flash(_("Your email address is confirmed."), "success")
            if signed_in is not None:
                return redirect(url_for("account.overview"))
            if second_step_required(account):
                # Staff (and anyone with a second step) sign in through it: the link
                # proves the mailbox, not the second factor.
                flash(_("You can sign in now."), "info")
                return redirect(url_for("auth.login"))
            # The link came from the account's mailbox and nobody is signed in here: go
            # on signed in, in a brand-new session (which starts without the flashes).
            sign_in(account, remember=False)
            flash(_("Your email address is confirmed."), "success")
            flash(_("You are signed in."), "success")
            return redirect(url_for("account.overview"))
        email_tokens.peek_email_token(
            db.session, token, TokenPurpose.VERIFY_EMAIL, signed_in=signed_in
        )
    except errors.TokenRejected as exc:
        return render_template(
            "accounts/verify_email.html", form=form, problem=token_problem(exc.reason)
        ), token_problem_status(exc.reason)
    return render_template("accounts/verify_email.html", form=form, problem=None)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@password_budget.limited(password_budget.posted_sign_in_key)
def login() -> ResponseReturnValue:
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if current_user.is_authenticated:
        return redirect(safe_next(form.next.data) or url_for("account.overview"))
    if form.validate_on_submit():
        try:
            account = service.authenticate(
                db.session, form.email.data, form.password.data, client=client_info()
            )
        except errors.InvalidCredentials:
            form.form_errors.append(_("The email address or the password is not right."))
        except errors.AccountDisabled:
            form.form_errors.append(
                _("This account is disabled. Ask an administrator of the portal to enable it.")
            )
        except errors.EmailNotVerified as exc:
            send_verification(exc.account)
            form.form_errors.append(
                _(
                    "Your email address is not confirmed yet. We have sent a new "
                    "confirmation link to it: follow it, then sign in."
                )
            )
        else:
            if second_step_required(account):
                return begin_second_factor(
                    account, remember=bool(form.remember.data), next_url=safe_next(form.next.data)
                )
            sign_in(account, remember=bool(form.remember.data))
            flash(_("You are signed in."), "success")
            return redirect(safe_next(form.next.data) or url_for("account.overview"))
    return render_template("accounts/login.html", form=form), form_status(form)


@bp.post("/logout")
@login_required  # type: ignore[untyped-decorator]
def logout() -> ResponseReturnValue:
    auth_sessions.end_session(db.session, current_user.auth_session, client=client_info())
    session.clear()
    logout_user()  # after clear(): it leaves the flag that deletes the remember-me cookie
    flash(_("You are signed out."), "success")
    return redirect(url_for("public.index"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_email_limit, methods=["POST"])
@limiter.limit(_email_limit, methods=["POST"], key_func=_posted_email_key)
def forgot_password() -> ResponseReturnValue:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        # The same work whether or not the address has an account: the job decides.
        enqueue(
            db.session,
            "accounts.password_reset",
            {"email": form.email.data, "client": client_payload(client_info())},
        )
        return redirect(url_for("auth.check_email", reason="reset"))
    return render_template("accounts/forgot_password.html", form=form), form_status(form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_email_limit, methods=["POST"])
def reset_password(token: str) -> ResponseReturnValue:
    form = ResetPasswordForm()
    try:
        email_tokens.peek_email_token(db.session, token, TokenPurpose.RESET_PASSWORD)
        if form.validate_on_submit():
            try:
                service.reset_password(db.session, token, form.password.data, client=client_info())
            except errors.PasswordRejected as exc:
                form.password.errors.append(password_problem_message(exc.reason))
            else:
                # Every session has ended. Whoever knew the old password may have linked a
                # provider of theirs: the owner reviews the linked methods after signing in.
                session.clear()
                logout_user()
                flash(
                    _("Your password has been changed. Sign in with your new password."),
                    "success",
                )
                flash(
                    _(
                        "Then check the sign-in methods linked to your account, and unlink "
                        "any you do not recognise: we will take you there."
                    ),
                    "info",
                )
                return redirect(
                    url_for("auth.login", next=url_for("social.methods", review="password-reset"))
                )
    except errors.TokenRejected as exc:
        return render_template(
            "accounts/reset_password.html", form=form, problem=token_problem(exc.reason)
        ), token_problem_status(exc.reason)
    return render_template("accounts/reset_password.html", form=form, problem=None), form_status(
        form
    )
