"""Forms of the sign-in and account pages. Field rules mirror the services' rules."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, ValidationError

from vrm_portal.accounts import errors, passwords, service

PASSWORD_HINT = _l("12 to 128 characters. A passphrase of several words is easiest.")


def _valid_email(_form: Any, field: Any) -> None:
    if field.errors:  # already refused (too long): one message is enough
        return
    try:
        field.data = service.normalise_email(field.data or "")
    except errors.InvalidEmail as exc:
        if exc.reason == "too_long":
            raise ValidationError(_l("An email address has at most 254 characters.")) from exc
        raise ValidationError(_l("Enter an email address in the format name@example.com.")) from exc


def _password_policy(form: Any, field: Any) -> None:
    email = getattr(getattr(form, "email", None), "data", None)
    problem = passwords.policy_problem(field.data or "", email if isinstance(email, str) else None)
    if problem:
        raise ValidationError(password_problem_message(problem))


def password_problem_message(reason: str) -> str:
    """The form message for a password policy reason (see ``passwords.policy_problem``)."""
    messages = {
        "too_short": _l("Use at least %(n)s characters.", n=passwords.MIN_LENGTH),
        "too_long": _l("Use at most %(n)s characters.", n=passwords.MAX_LENGTH),
        "same_as_email": _l("Your password must not be your email address."),
        "too_guessable": _l(
            "This password is too easy to guess: it is a common password, a pattern, a "
            "repetition or close to your email address. Try three or four unrelated words."
        ),
    }
    return str(messages.get(reason, _l("Choose another password.")))


def _email_field(label: Any) -> EmailField:
    return EmailField(
        label,
        validators=[
            InputRequired(_l("Enter your email address.")),
            Length(max=320, message=_l("An email address has at most 254 characters.")),
            _valid_email,
        ],
    )


def _new_password_fields(label: Any) -> tuple[PasswordField, PasswordField]:
    password = PasswordField(
        label,
        validators=[InputRequired(_l("Choose a password.")), _password_policy],
        description=PASSWORD_HINT,
    )
    confirm = PasswordField(
        _l("Type the password again"),
        validators=[
            InputRequired(_l("Type the password a second time.")),
            EqualTo("password", message=_l("The two passwords are not the same.")),
        ],
    )
    return password, confirm


class RegisterForm(FlaskForm):  # type: ignore[misc]
    email = _email_field(_l("Email address"))
    password, password_confirm = _new_password_fields(_l("Password"))


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = EmailField(
        _l("Email address"),
        validators=[InputRequired(_l("Enter your email address.")), Length(max=320)],
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(_l("Enter your password.")), Length(max=1024)],
    )
    remember = BooleanField(_l("Keep me signed in on this device"))
    next = HiddenField()


class ForgotPasswordForm(FlaskForm):  # type: ignore[misc]
    email = _email_field(_l("Email address"))


class ResetPasswordForm(FlaskForm):  # type: ignore[misc]
    password, password_confirm = _new_password_fields(_l("New password"))


class ChangePasswordForm(FlaskForm):  # type: ignore[misc]
    current_password = PasswordField(
        _l("Current password"),
        validators=[InputRequired(_l("Enter your current password.")), Length(max=1024)],
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[InputRequired(_l("Choose a new password.")), _password_policy],
        description=PASSWORD_HINT,
    )
    new_password_confirm = PasswordField(
        _l("Type the new password again"),
        validators=[
            InputRequired(_l("Type the new password a second time.")),
            EqualTo("new_password", message=_l("The two passwords are not the same.")),
        ],
    )


class ChangeEmailForm(FlaskForm):  # type: ignore[misc]
    new_email = _email_field(_l("New email address"))
    current_password = PasswordField(
        _l("Current password"),
        validators=[InputRequired(_l("Enter your current password.")), Length(max=1024)],
    )


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """A button that changes something: only the CSRF token."""


class LocaleForm(FlaskForm):  # type: ignore[misc]
    locale = HiddenField(validators=[DataRequired()])
    next = HiddenField()


class TwoFactorCodeForm(FlaskForm):  # type: ignore[misc]
    code = StringField(
        _l("6-digit code from your authenticator app"),
        validators=[
            InputRequired(_l("Enter the 6-digit code shown in your authenticator app.")),
            Length(max=12, message=_l("The code has 6 digits.")),
        ],
    )
