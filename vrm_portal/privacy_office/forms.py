"""Forms of the privacy office console."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from vrm_portal.consent.models import Action, CollectionMethod
from vrm_portal.privacy_office.access import REASON_MAX
from vrm_portal.requests.models import ReceivedVia, RequestKind

ACTION_LABELS = {
    Action.GRANTED.value: _l("Given"),
    Action.WITHDRAWN.value: _l("Withdrawn"),
    Action.EXPIRED.value: _l("Expired"),
}

METHOD_LABELS = {
    CollectionMethod.PORTAL.value: _l("On the portal's pages"),
    CollectionMethod.EMAIL_CONFIRMATION.value: _l("Email link (double opt-in)"),
    CollectionMethod.GPC_SIGNAL.value: _l("Global Privacy Control signal"),
    CollectionMethod.EXPIRY.value: _l("Expiry"),
    CollectionMethod.IMPORT.value: _l("Import (command line)"),
    CollectionMethod.API.value: _l("Brand API"),
    CollectionMethod.STAFF.value: _l("Staff (command line)"),
    CollectionMethod.ERASURE.value: _l("Account erasure"),
}


def method_label(value: str) -> str:
    label = METHOD_LABELS.get(value)
    return str(label) if label is not None else value


def action_label(value: str) -> str:
    label = ACTION_LABELS.get(value)
    return str(label) if label is not None else value


_KEY = Regexp(r"^[A-Za-z0-9._-]*$", message=_l("Use only letters, digits, dots, dashes and _."))
_SLUG = Regexp(r"^[a-z0-9-]*$", message=_l("Use only lower-case letters, digits and dashes."))


def _reason_field(label: Any) -> StringField:
    return StringField(
        label,
        description=_l(
            "Why you look this up: a ticket reference or a few words. The consumer sees it."
        ),
        validators=[
            DataRequired(message=_l("Give the reason for this look-up.")),
            Length(max=REASON_MAX, message=_l("A reason has at most 500 characters.")),
        ],
    )


class LogSearchForm(FlaskForm):  # type: ignore[misc]
    """The consent log search (GET: the filters are the page's address)."""

    class Meta:
        csrf = False

    email = StringField(
        _l("Consumer's email address"),
        validators=[
            Optional(),
            Length(max=254, message=_l("An email address has at most 254 characters.")),
            Email(message=_l("Enter an email address like name@example.com.")),
        ],
    )
    subject = StringField(
        _l("Subject key"),
        validators=[
            Optional(),
            Length(max=64, message=_l("A subject key has 64 characters at most.")),
            _KEY,
        ],
    )
    pairwise_id = StringField(
        _l("A brand's pairwise id"),
        description=_l("What a brand quotes when it asks whether a person consented."),
        validators=[
            Optional(),
            Length(max=36, message=_l("A pairwise id has 36 characters.")),
            _KEY,
        ],
    )
    brand = SelectField(_l("Brand"), choices=[], validate_choice=False)
    purpose = StringField(
        _l("Purpose key"),
        validators=[
            Optional(),
            Length(max=64, message=_l("A purpose key has 64 characters at most.")),
            _SLUG,
        ],
    )
    version = IntegerField(
        _l("Text version"),
        validators=[
            Optional(),
            NumberRange(min=1, max=1_000_000, message=_l("A version is a number from 1.")),
        ],
    )
    action = SelectField(
        _l("Change"),
        choices=[SelectChoice("", _l("Any"))]
        + [SelectChoice(k, v) for k, v in ACTION_LABELS.items()],
        default="",
    )
    method = SelectField(
        _l("Collection method"),
        choices=[SelectChoice("", _l("Any"))]
        + [SelectChoice(k, v) for k, v in METHOD_LABELS.items()],
        default="",
    )
    since = DateField(
        _l("From (day included)"),
        validators=[Optional()],
        format="%Y-%m-%d",
    )
    until = DateField(
        _l("To (day included)"),
        validators=[Optional()],
        format="%Y-%m-%d",
    )
    reason = _reason_field(_l("Reason for the look-up"))

    def validate(self, extra_validators: Any = None) -> bool:
        ok = bool(super().validate(extra_validators))
        if self.version.data is not None and not (self.brand.data and self.purpose.data):
            self.version.errors.append(
                _l("A text version belongs to a purpose: choose the brand and the purpose too.")
            )
            ok = False
        if self.purpose.data and not self.brand.data:
            self.purpose.errors.append(
                _l("A purpose key belongs to a brand: choose the brand too.")
            )
            ok = False
        if self.since.data and self.until.data and self.since.data > self.until.data:
            self.until.errors.append(_l("The end date comes before the start date."))
            ok = False
        return ok


class StatsForm(FlaskForm):  # type: ignore[misc]
    class Meta:
        csrf = False

    brand = SelectField(_l("Brand"), choices=[], validate_choice=False)
    purpose = StringField(
        _l("Purpose key"),
        validators=[
            Optional(),
            Length(max=64, message=_l("A purpose key has 64 characters at most.")),
            _SLUG,
        ],
    )
    since = DateField(_l("From (day included)"), validators=[Optional()], format="%Y-%m-%d")
    until = DateField(_l("To (day included)"), validators=[Optional()], format="%Y-%m-%d")

    def validate(self, extra_validators: Any = None) -> bool:
        ok = bool(super().validate(extra_validators))
        if self.since.data and self.until.data:
            if self.since.data > self.until.data:
                self.until.errors.append(_l("The end date comes before the start date."))
                ok = False
            elif (self.until.data - self.since.data).days > 3 * 366:
                self.until.errors.append(_l("Choose a range of three years at most."))
                ok = False
        return ok


class OfflineRequestForm(FlaskForm):  # type: ignore[misc]
    """A request received by post or email, recorded by the privacy office."""

    email = StringField(
        _l("Consumer's email address"),
        validators=[
            DataRequired(message=_l("Enter the consumer's email address.")),
            Length(max=254, message=_l("An email address has at most 254 characters.")),
            Email(message=_l("Enter an email address like name@example.com.")),
        ],
    )
    kind = RadioField(
        _l("What the consumer asks for"),
        choices=[
            SelectChoice(RequestKind.EXPORT.value, _l("A copy of their data (export)")),
            SelectChoice(RequestKind.ERASURE.value, _l("The erasure of their account")),
        ],
        validators=[InputRequired(message=_l("Choose the kind of request."))],
    )
    received_via = RadioField(
        _l("Received by"),
        choices=[
            SelectChoice(ReceivedVia.POST.value, _l("Post")),
            SelectChoice(ReceivedVia.EMAIL.value, _l("Email")),
        ],
        validators=[InputRequired(message=_l("Choose how the request was received."))],
    )
    received_on = DateField(
        _l("Received on"),
        format="%Y-%m-%d",
        validators=[InputRequired(message=_l("Enter the date the request was received."))],
    )
    reason = _reason_field(_l("Reason or ticket reference"))


class ReasonForm(FlaskForm):  # type: ignore[misc]
    """A reason, for a page that shows one consumer's data (the request's export)."""

    reason = _reason_field(_l("Reason for the look-up"))


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """A button that only needs its CSRF token."""
