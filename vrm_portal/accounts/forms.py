"""Forms of the sign-in and account pages. Field rules mirror the services' rules."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, ValidationError

from vrm_portal.accounts import errors, passwords, profile, service

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


PROFILE_PROBLEMS = {
    ("given_name", "too_long"): _l(
        "A given name has at most %(n)s characters.", n=profile.NAME_MAX
    ),
    ("given_name", "control_characters"): _l(
        "Remove the tabs, line breaks or invisible formatting characters from your given name."
    ),
    ("family_name", "too_long"): _l(
        "A family name has at most %(n)s characters.", n=profile.NAME_MAX
    ),
    ("family_name", "control_characters"): _l(
        "Remove the tabs, line breaks or invisible formatting characters from your family name."
    ),
    ("phone", "invalid_phone"): _l(
        "This is not a phone number that exists. Enter a French number such as 06 12 34 56 78, "
        "or a number from another country with its code, such as +44 20 7946 0958."
    ),
    ("phone", "control_characters"): _l(
        "Remove the tabs, line breaks or invisible formatting characters from your phone number."
    ),
    ("postal_address", "control_characters"): _l(
        "Remove the tabs or invisible formatting characters from your address."
    ),
    ("postal_address", "too_many_lines"): _l(
        "Write your address on at most %(n)s lines.", n=profile.ADDRESS_LINES_MAX
    ),
    ("postal_address", "line_too_long"): _l(
        "Each line of your address has at most %(n)s characters: split the longer lines.",
        n=profile.ADDRESS_LINE_MAX,
    ),
    ("postal_address", "too_long"): _l(
        "Your address has at most %(n)s characters in all.", n=profile.ADDRESS_MAX
    ),
}


def profile_problem_message(field: str, reason: str) -> str:
    """The form message for a ``profile.ProfileInvalid``."""
    return str(PROFILE_PROBLEMS.get((field, reason), _l("Check this field.")))


def _profile_rule(normalise: Any) -> Any:
    """A validator that stores the field in its normalised form, or says what is wrong."""

    def check(_form: Any, field: Any) -> None:
        try:
            field.data = normalise(field.data or "")
        except profile.ProfileInvalid as exc:
            raise ValidationError(profile_problem_message(exc.field, exc.reason)) from exc

    return check


class ProfileForm(FlaskForm):  # type: ignore[misc]
    given_name = StringField(
        _l("Given name"),
        validators=[_profile_rule(lambda raw: profile.normalise_name(raw, "given_name"))],
    )
    family_name = StringField(
        _l("Family name"),
        validators=[_profile_rule(lambda raw: profile.normalise_name(raw, "family_name"))],
    )
    phone = TelField(
        _l("Phone number"),
        validators=[_profile_rule(profile.normalise_phone)],
        description=_l("A French number, or a number from another country with its code (+44 …)."),
    )
    postal_address = TextAreaField(
        _l("Postal address"),
        validators=[_profile_rule(profile.normalise_postal_address)],
        description=_l(
            "As you write it on an envelope: at most %(lines)s lines of %(n)s characters.",
            lines=profile.ADDRESS_LINES_MAX,
            n=profile.ADDRESS_LINE_MAX,
        ),
        render_kw={"rows": profile.ADDRESS_LINES_MAX},
    )


class TimeZoneForm(FlaskForm):  # type: ignore[misc]
    """The zone is checked by ``time_zone.set_time_zone``: any zone the portal knows, not
    only those listed (a browser may have reported an older name)."""

    time_zone = SelectField(
        _l("Time zone"),
        validators=[InputRequired(_l("Choose a time zone from the list."))],
        validate_choice=False,
        description=_l("The city nearest to you that is listed under your region, or UTC."),
    )
