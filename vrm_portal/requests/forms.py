"""Forms of the account deletion pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, RadioField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

#: Values of ``DeleteAccountForm.when``.
LATER = "later"
NOW = "now"


class DeleteAccountForm(FlaskForm):  # type: ignore[misc]
    """Ask for the account's erasure. ``password`` is removed for accounts without one."""

    password = PasswordField(
        _l("Your password"),
        validators=[
            DataRequired(message=_l("Enter your password to confirm that it is you.")),
            Length(max=128, message=_l("A password has at most 128 characters.")),
        ],
    )
    when = RadioField(
        _l("When should we delete your account?"),
        # The labels say how long the grace period is: the view sets them.
        choices=[SelectChoice(LATER), SelectChoice(NOW)],
        default=LATER,
        validators=[InputRequired(message=_l("Choose when to delete your account."))],
    )
    understood = BooleanField(
        _l("I understand that my account and my data will be deleted for good"),
        validators=[DataRequired(message=_l("Tick the box to confirm that you understand."))],
    )


class DeleteNowForm(FlaskForm):  # type: ignore[misc]
    """During the grace period: delete at once instead of waiting."""

    password = PasswordField(
        _l("Your password"),
        validators=[
            DataRequired(message=_l("Enter your password to confirm that it is you.")),
            Length(max=128, message=_l("A password has at most 128 characters.")),
        ],
    )
    understood = BooleanField(
        _l("I understand that my account and my data will be deleted now, for good"),
        validators=[DataRequired(message=_l("Tick the box to confirm that you understand."))],
    )
