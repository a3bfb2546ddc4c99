"""Forms of the passkey, second-step and "confirm it is you" pages."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import InputRequired, Length, ValidationError

from vrm_portal.accounts.passkeys import service as passkeys

#: The answer of a WebAuthn ceremony, as JSON; a few kilobytes at most.
CREDENTIAL_MAX = 16_384

PASSKEY_NAME_PROBLEMS = {
    "empty": _l("Give the passkey a name."),
    "too_long": _l("A passkey name has at most %(n)s characters.", n=passkeys.NAME_MAX),
    "control_characters": _l(
        "Remove the tabs, line breaks or invisible formatting characters from the name."
    ),
}


def passkey_name_problem(reason: str) -> str:
    return str(PASSKEY_NAME_PROBLEMS.get(reason, PASSKEY_NAME_PROBLEMS["empty"]))


def _passkey_name(_form: Any, field: Any) -> None:
    try:
        field.data = passkeys.normalise_name(field.data or "")
    except passkeys.InvalidPasskeyName as exc:
        raise ValidationError(passkey_name_problem(exc.reason)) from exc


def _name_field() -> StringField:
    return StringField(
        _l("Name of the passkey"),
        validators=[
            InputRequired(_l("Give the passkey a name.")),
            Length(max=200, message=PASSKEY_NAME_PROBLEMS["too_long"]),
            _passkey_name,
        ],
        description=_l(
            "So that you can tell your passkeys apart, for instance “My phone” or “Work laptop”."
        ),
    )


def _credential_field() -> HiddenField:
    return HiddenField(validators=[Length(max=CREDENTIAL_MAX)])


class AddPasskeyForm(FlaskForm):  # type: ignore[misc]
    name = _name_field()
    credential = _credential_field()


class RenamePasskeyForm(FlaskForm):  # type: ignore[misc]
    name = _name_field()


class PasskeyAnswerForm(FlaskForm):  # type: ignore[misc]
    """The answer of a passkey ceremony (second step, confirming it is you)."""

    credential = _credential_field()


class PasskeySignInForm(FlaskForm):  # type: ignore[misc]
    """Signing in with a passkey alone, from the sign-in page (names apart from the
    password form's, which shares the page)."""

    passkey_credential = _credential_field()
    passkey_next = HiddenField()
    passkey_remember = HiddenField()


class RecoveryCodeForm(FlaskForm):  # type: ignore[misc]
    code = StringField(
        _l("Recovery code"),
        validators=[
            InputRequired(_l("Enter one of your recovery codes.")),
            Length(max=40, message=_l("A recovery code has 10 letters and digits.")),
        ],
        description=_l("10 letters and digits, such as 7k2qx-m3wdp. Each code works once."),
    )


class ConfirmAccessForm(FlaskForm):  # type: ignore[misc]
    password = PasswordField(
        _l("Your password"),
        validators=[InputRequired(_l("Enter your password.")), Length(max=1024)],
    )
