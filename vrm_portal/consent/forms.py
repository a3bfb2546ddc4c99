"""Forms of the consent pages. Each purpose has one small form: give or withdraw."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField
from wtforms.validators import AnyOf, InputRequired, NumberRange


class ConsentChoiceForm(FlaskForm):  # type: ignore[misc]
    #: ``grant`` or ``withdraw``: the button the consumer pressed.
    choice = HiddenField(validators=[InputRequired(), AnyOf(["grant", "withdraw"])])
    #: The text version shown on the page, so a text changed meanwhile is not agreed to blindly.
    version = IntegerField(validators=[InputRequired(), NumberRange(min=1, max=1_000_000)])


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """The button behind an emailed link (a mail scanner's GET changes nothing)."""


class WithdrawAllForm(FlaskForm):  # type: ignore[misc]
    """The one-click button that withdraws several consents at once (CSRF only)."""
