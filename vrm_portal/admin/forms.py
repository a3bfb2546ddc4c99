"""The console's forms. Each check says precisely what is wrong with the value."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import URL, DataRequired, Email, Length, NumberRange, Optional, Regexp

from vrm_portal.consent.models import LegalBasis, PurposeCategory

KEY_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
KEY_MESSAGE = _l(
    "Use 1 to 64 lower-case letters, digits and dashes, starting and ending with a "
    "letter or a digit."
)


#: Characters no console field may hold (line breaks and tabs are allowed in texts).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ConsoleForm(FlaskForm):  # type: ignore[misc]
    """A console form: besides each field's own checks, no text may hold a control
    character (a NUL cannot even be stored by PostgreSQL)."""

    def validate(self, extra_validators: Any = None) -> bool:
        valid: bool = super().validate(extra_validators)
        for field in self:
            if isinstance(field.data, str) and _CONTROL.search(field.data):
                field.errors = [*field.errors, _l("Remove the control characters from this field.")]
                valid = False
        return valid


def _required(message: str) -> DataRequired:
    return DataRequired(message=message)


def _at_most(length: int) -> Length:
    return Length(max=length, message=_l("At most %(num)s characters.", num=length))


def _key(message: str) -> list[object]:
    return [_required(message), Regexp(KEY_PATTERN, message=KEY_MESSAGE)]


class BrandForm(ConsoleForm):
    slug = StringField(
        _l("Key"),
        description=_l("Used in addresses and by the brand's API; it cannot change later."),
        validators=[
            _required(_l("Enter the brand's key.")),
            Regexp(KEY_PATTERN, message=KEY_MESSAGE),
        ],
    )
    name = StringField(
        _l("Name"),
        validators=[
            _required(_l("Enter the brand's name.")),
            _at_most(120),
        ],
    )
    description_en = TextAreaField(
        _l("Description (English)"),
        validators=[_at_most(500)],
    )
    description_fr = TextAreaField(
        _l("Description (French)"),
        validators=[_at_most(500)],
    )
    controller_name = StringField(
        _l("Data controller (legal name)"),
        validators=[
            _required(_l("Enter the data controller's legal name.")),
            _at_most(200),
        ],
    )
    controller_address = TextAreaField(
        _l("Controller's postal address"),
        validators=[_at_most(300)],
    )
    controller_email = StringField(
        _l("Privacy contact email"),
        description=_l("Shown to consumers on the brand's page and on every receipt."),
        validators=[
            _required(_l("Enter the privacy contact's email address.")),
            Email(message=_l("Enter an email address like privacy@example.com.")),
            _at_most(254),
        ],
    )
    policy_url = StringField(
        _l("Privacy policy address"),
        validators=[
            _required(_l("Enter the address of the privacy policy.")),
            URL(
                require_tld=False, message=_l("Enter an address starting with https:// or http://.")
            ),
            Regexp(
                r"^https?://\S+$", message=_l("Enter an address starting with https:// or http://.")
            ),
            _at_most(500),
        ],
    )
    jurisdiction = StringField(
        _l("Jurisdiction"),
        description=_l("Two-letter country code, e.g. FR."),
        default="FR",
        validators=[
            _required(_l("Enter the country code of the jurisdiction.")),
            Regexp(r"^[A-Z]{2}$", message=_l("Enter two capital letters, e.g. FR.")),
        ],
    )


CATEGORY_CHOICES = [
    SelectChoice(PurposeCategory.EMAIL_MARKETING.value, _l("Offers by email")),
    SelectChoice(PurposeCategory.SMS_MARKETING.value, _l("Offers by text message")),
    SelectChoice(PurposeCategory.POSTAL_MARKETING.value, _l("Offers by post")),
    SelectChoice(PurposeCategory.PERSONALISATION.value, _l("Personalisation")),
    SelectChoice(PurposeCategory.PARTNER_SHARING.value, _l("Sharing with partners")),
    SelectChoice(PurposeCategory.ANALYTICS.value, _l("Analytics")),
]
BASIS_CHOICES = [
    SelectChoice(LegalBasis.CONSENT.value, _l("Consent")),
    SelectChoice(LegalBasis.LEGITIMATE_INTEREST.value, _l("Legitimate interest")),
    SelectChoice(LegalBasis.CONTRACT.value, _l("Contract")),
]


class PurposeMetadataForm(ConsoleForm):
    category = SelectField(_l("Category"), choices=CATEGORY_CHOICES)
    legal_basis = SelectField(_l("Legal basis"), choices=BASIS_CHOICES)
    validity_days = IntegerField(
        _l("Validity in days"),
        default=730,
        validators=[
            DataRequired(message=_l("Enter a number of days between 1 and 3650.")),
            NumberRange(min=1, max=3650, message=_l("Enter a number of days between 1 and 3650.")),
        ],
    )
    shares_with_third_parties = BooleanField(
        _l("Sells or shares data with third parties (withdrawn by a Global Privacy Control signal)")
    )


class TextFieldsMixin:
    title_en = StringField(
        _l("Title (English)"),
        validators=[
            _required(_l("Enter the English title.")),
            _at_most(200),
        ],
    )
    title_fr = StringField(
        _l("Title (French)"),
        validators=[
            _required(_l("Enter the French title.")),
            _at_most(200),
        ],
    )
    text_en = TextAreaField(
        _l("Text (English)"),
        validators=[
            _required(_l("Enter the English text.")),
            _at_most(20_000),
        ],
    )
    text_fr = TextAreaField(
        _l("Text (French)"),
        validators=[
            _required(_l("Enter the French text.")),
            _at_most(20_000),
        ],
    )


class NewPurposeForm(PurposeMetadataForm, TextFieldsMixin):
    key = StringField(
        _l("Key"),
        validators=[
            _required(_l("Enter the purpose's key.")),
            Regexp(KEY_PATTERN, message=KEY_MESSAGE),
        ],
    )


class DraftForm(ConsoleForm, TextFieldsMixin):
    pass


class RetireForm(ConsoleForm):
    reason = TextAreaField(
        _l("Reason"),
        validators=[
            _required(_l("Say why the purpose is retired.")),
            _at_most(2000),
        ],
    )
    confirm = BooleanField(
        _l("I understand that every consent to this purpose is withdrawn."),
        validators=[_required(_l("Tick the box to confirm."))],
    )


class TopicForm(ConsoleForm):
    key = StringField(
        _l("Key"),
        validators=[
            _required(_l("Enter the topic's key.")),
            Regexp(KEY_PATTERN, message=KEY_MESSAGE),
        ],
    )
    label_en = StringField(
        _l("Label (English)"),
        validators=[
            _required(_l("Enter the English label.")),
            _at_most(120),
        ],
    )
    label_fr = StringField(
        _l("Label (French)"),
        validators=[
            _required(_l("Enter the French label.")),
            _at_most(120),
        ],
    )


class RenameTopicForm(ConsoleForm):
    label_en = StringField(
        _l("Label (English)"),
        validators=[
            _required(_l("Enter the English label.")),
            _at_most(120),
        ],
    )
    label_fr = StringField(
        _l("Label (French)"),
        validators=[
            _required(_l("Enter the French label.")),
            _at_most(120),
        ],
    )


class ReviewForm(ConsoleForm):
    comment = TextAreaField(
        _l("Comment"),
        description=_l("Required to reject: say what must change."),
        validators=[_at_most(2000)],
    )


class ImportForm(ConsoleForm):
    file = FileField(_l("Catalogue file (JSON)"), validators=[FileRequired(_l("Choose a file."))])


ROLE_CHOICES = [
    SelectChoice("dpo", _l("Data protection officer")),
    SelectChoice("admin", _l("Administrator")),
    SelectChoice("brand-operator", _l("Brand operator")),
]


class RoleFields(ConsoleForm):
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)
    brand_id = SelectField(
        _l("Brand (brand operators only)"), choices=[], coerce=str, validators=[Optional()]
    )


class InviteForm(RoleFields):
    email = StringField(
        _l("Email address"),
        validators=[
            _required(_l("Enter the email address to invite.")),
            Email(message=_l("Enter an email address like name@example.com.")),
            _at_most(254),
        ],
    )


class ReasonForm(ConsoleForm):
    reason = TextAreaField(
        _l("Reason"),
        validators=[
            _required(_l("Say why, for the audit trail.")),
            _at_most(2000),
        ],
    )


class EmptyForm(ConsoleForm):
    pass


class AcceptInvitationForm(ConsoleForm):
    password = PasswordField(
        _l("Choose a password"),
        description=_l("At least 12 characters."),
        validators=[_required(_l("Choose a password."))],
    )
    confirm = PasswordField(
        _l("Type it again"), validators=[_required(_l("Type the password again."))]
    )

    def validate_confirm(self, field: PasswordField) -> None:
        from wtforms.validators import ValidationError

        if field.data != self.password.data:
            raise ValidationError(_l("The two passwords are not the same."))


class AuditSearchForm(ConsoleForm):
    class Meta:
        csrf = False

    actor = StringField(_l("Person (email)"), validators=[Optional(), Length(max=254)])
    action = StringField(_l("Action"), validators=[Optional(), Length(max=64)])
    object_type = StringField(_l("Object type"), validators=[Optional(), Length(max=32)])
    object_id = StringField(_l("Object id"), validators=[Optional(), Length(max=128)])
    since = StringField(_l("From (YYYY-MM-DD)"), validators=[Optional()])
    until = StringField(_l("Until (YYYY-MM-DD, included)"), validators=[Optional()])
