"""The brand space's forms. Each carries a one-time ``submission`` key (see
``service.claim_submission``): sent twice, a form does its work once."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from vrm_portal.brand_space.service import new_submission_key
from vrm_portal.brands.clients import SCOPES
from vrm_portal.webhooks.service import MAX_URL_LENGTH


class ActionForm(FlaskForm):  # type: ignore[misc]
    """A button that changes something: the CSRF token and the one-time key."""

    submission = HiddenField(
        default=new_submission_key,
        validators=[
            InputRequired(message=_l("This form is out of date: load the page again.")),
            Regexp(
                r"^[A-Za-z0-9_-]{16,64}$",
                message=_l("This form is out of date: load the page again."),
            ),
        ],
    )


class ConfirmedActionForm(ActionForm):
    """An action that cannot be undone: a box to tick first."""

    confirm = BooleanField(validators=[DataRequired(message=_l("Tick the box to confirm."))])


class ScopesField(SelectMultipleField):  # type: ignore[misc]
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


SCOPE_HINTS = {
    "consumers:read": _l("Read the consumers who share data with the brand"),
    "changes:read": _l("Follow the change feed"),
    "interactions:write": _l("Record purchases, visits and other interactions"),
}


class NewClientForm(ActionForm):
    name = StringField(
        _l("Name"),
        description=_l("What uses this client, e.g. “CRM” or “Loyalty app”."),
        validators=[
            DataRequired(message=_l("Give the client a name.")),
            Length(max=120, message=_l("The name can have at most 120 characters.")),
            Regexp(
                r"^[^\x00-\x1f\x7f]*$",
                message=_l("The name cannot contain control characters or line breaks."),
            ),
        ],
    )
    scopes = ScopesField(
        _l("What it may do"),
        choices=[SelectChoice(scope, scope) for scope in SCOPES],
        validate_choice=False,
    )

    def validate_scopes(self, field: Any) -> None:
        chosen = field.data or []
        if not chosen:
            raise ValidationError(_l("Choose at least one thing the client may do."))
        unknown = [scope for scope in chosen if scope not in SCOPES]
        if unknown:
            raise ValidationError(
                _l("Unknown scope: %(scopes)s.", scopes=", ".join(sorted(unknown)))
            )


class NewEndpointForm(ActionForm):
    url = StringField(
        _l("Address (URL)"),
        description=_l("The brand's https:// address that receives the changes."),
        validators=[
            DataRequired(message=_l("Enter the address of the endpoint.")),
            Length(
                max=MAX_URL_LENGTH,
                message=_l("The address can have at most %(max)d characters.", max=MAX_URL_LENGTH),
            ),
        ],
    )
