"""Forms of the interests and plans pages. Field rules mirror the service's rules; the
service stays the final guard, and its refusals come back as field errors."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from vrm_portal.interests import service
from vrm_portal.interests.models import IntentCategory

#: What each intent category is called on the pages (the one place for these labels).
CATEGORY_LABELS = {
    IntentCategory.BUY_VEHICLE: _l("Buy a vehicle"),
    IntentCategory.REPLACE_VEHICLE: _l("Replace my vehicle"),
    IntentCategory.VEHICLE_SERVICE: _l("Have my vehicle serviced"),
    IntentCategory.GIFT: _l("Buy a gift"),
    IntentCategory.CELEBRATION: _l("Organise a celebration"),
    IntentCategory.WINE_CELLAR: _l("Build up my wine cellar"),
    IntentCategory.OTHER: _l("Something else"),
}

#: Horizons offered in the list; the service accepts any whole number of months in 1..60.
HORIZONS = (1, 3, 6, 12, 24)
DEFAULT_HORIZON = 6

#: Where a refusal of the service is shown, and what it says.
INTENT_PROBLEMS = {
    "category": ("category", _l("Choose what you plan from the list.")),
    "summary": (
        "summary",
        _l("Describe your plan in at most %(n)s characters.", n=service.SUMMARY_MAX),
    ),
    "horizon": ("horizon", _l("Choose when you plan it: between 1 and 60 months from now.")),
    "budget_negative": ("budget_min", _l("A budget cannot be below zero.")),
    "budget_too_high": (
        "budget_max",
        _l("A budget can be at most 10,000,000 euros."),
    ),
    "budget_order": (
        "budget_max",
        _l("The highest budget must not be lower than the lowest budget."),
    ),
    "no_brand": ("brands", _l("Choose at least one brand that may see this plan.")),
    "unknown_brand": (
        "brands",
        _l("One of the brands you chose is not known (any more). Choose again."),
    ),
}


def category_label(category: str) -> str:
    try:
        return str(CATEGORY_LABELS[IntentCategory(category)])
    except ValueError:
        return category


def horizon_label(months: int) -> str:
    return str(ngettext("Within %(num)s month", "Within %(num)s months", months))


def parse_euros(text: str | None) -> int | None:
    """A whole number of euros as typed ("15000", "15 000 €"); None when left empty.

    ``ValueError`` for anything else.
    """
    cleaned = "".join((text or "").split()).removesuffix("€")
    if not cleaned:
        return None
    digits = cleaned.removeprefix("-")
    if not digits or len(digits) > 12 or not (digits.isascii() and digits.isdigit()):
        raise ValueError(text)
    return -int(digits) if cleaned.startswith("-") else int(digits)


def _euros(_form: Any, field: Any) -> None:
    try:
        amount = parse_euros(field.data)
    except ValueError:
        raise ValidationError(
            _l("Enter a whole number of euros, for example 15000, or leave it empty.")
        ) from None
    if amount is None:
        return
    if amount < 0:
        raise ValidationError(INTENT_PROBLEMS["budget_negative"][1])
    if amount > service.BUDGET_MAX:
        raise ValidationError(INTENT_PROBLEMS["budget_too_high"][1])


def _budget_ordered(form: Any, field: Any) -> None:
    if form.budget_min.errors or field.errors:
        return
    try:
        low, high = parse_euros(form.budget_min.data), parse_euros(field.data)
    except ValueError:
        return
    if low is not None and high is not None and low > high:
        raise ValidationError(INTENT_PROBLEMS["budget_order"][1])


def _months_or_none(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    if not text or len(text) > 3 or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _horizon_in_range(_form: Any, field: Any) -> None:
    if field.data is None or not service.HORIZON_MIN <= field.data <= service.HORIZON_MAX:
        raise ValidationError(INTENT_PROBLEMS["horizon"][1])


def _known_category(_form: Any, field: Any) -> None:
    if field.data and field.data not in {c.value for c in IntentCategory}:
        raise ValidationError(INTENT_PROBLEMS["category"][1])


def _some_brand(_form: Any, field: Any) -> None:
    if not field.data:
        raise ValidationError(INTENT_PROBLEMS["no_brand"][1])


class InterestsForm(FlaskForm):  # type: ignore[misc]
    """One brand's topics: the keys of those ticked (the service checks them)."""

    topics = SelectMultipleField(validate_choice=False)


class IntentForm(FlaskForm):  # type: ignore[misc]
    category = SelectField(
        _l("What do you plan?"),
        validators=[DataRequired(INTENT_PROBLEMS["category"][1]), _known_category],
        validate_choice=False,
    )
    summary = StringField(
        _l("In your own words (optional)"),
        validators=[Length(max=service.SUMMARY_MAX, message=INTENT_PROBLEMS["summary"][1])],
        description=_l("For example: a family estate car. At most 200 characters."),
    )
    horizon = SelectField(
        _l("When?"),
        coerce=_months_or_none,
        validators=[_horizon_in_range],
        validate_choice=False,
        default=DEFAULT_HORIZON,
    )
    budget_min = StringField(
        _l("Lowest budget, in euros (optional)"),
        validators=[_euros],
        description=_l("A whole number, for example 15000."),
    )
    budget_max = StringField(
        _l("Highest budget, in euros (optional)"),
        validators=[_euros, _budget_ordered],
        description=_l("A whole number, for example 25000."),
    )
    brands = SelectMultipleField(
        _l("Brands that may see this plan"), validators=[_some_brand], validate_choice=False
    )

    def __init__(self, *args: Any, brand_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.category.choices = [("", _l("Choose…"))] + [
            (category.value, label) for category, label in CATEGORY_LABELS.items()
        ]
        horizons = list(HORIZONS)
        typed = self.horizon.data
        if isinstance(typed, int) and service.HORIZON_MIN <= typed <= service.HORIZON_MAX:
            horizons = sorted({*horizons, typed})
        self.horizon.choices = [(months, horizon_label(months)) for months in horizons]
        self.brands.choices = brand_choices

    def intent_input(self) -> service.IntentInput:
        """What was typed, for the service (call after a successful validation)."""
        return service.IntentInput(
            category=self.category.data,
            summary=self.summary.data or "",
            horizon_months=self.horizon.data,
            budget_min=parse_euros(self.budget_min.data),
            budget_max=parse_euros(self.budget_max.data),
            brand_slugs=frozenset(self.brands.data or ()),
        )


class WithdrawIntentForm(FlaskForm):  # type: ignore[misc]
    """The button that stops showing a plan to brands."""
