"""How a recorded interaction reads on the consumer's pages: its type, amount and reference.

The body is what the brand sent through the API. The API validates it, but the page must
never fail on an odd value, so anything that cannot be read as expected is shown as sent,
or left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import format_currency
from flask_babel import lazy_gettext as _l

from vrm_portal.history.models import Interaction, InteractionType

TYPE_LABELS = {
    InteractionType.PURCHASE: _l("Purchase"),
    InteractionType.SERVICE_VISIT: _l("Service visit"),
    InteractionType.MESSAGE_SENT: _l("Message sent"),
    InteractionType.SUPPORT_CASE: _l("Support case"),
    InteractionType.EVENT_ATTENDED: _l("Event attended"),
    InteractionType.TEST_DRIVE: _l("Test drive"),
}

_CURRENCY = re.compile(r"[A-Z]{3}")
#: Amounts past this are not prices; they are shown as sent rather than formatted.
_AMOUNT_LIMIT = Decimal(10) ** 15


@dataclass(frozen=True)
class InteractionView:
    type_label: str
    occurred_at: datetime
    summary: str
    amount: str | None
    reference: str | None


def type_label(kind: str) -> str:
    try:
        return str(TYPE_LABELS[InteractionType(kind)])
    except ValueError:
        return kind


def amount_text(amount: Any) -> str | None:
    """``{"value": "12.50", "currency": "EUR"}`` in the reader's language (``12,50 €``)."""
    if not isinstance(amount, dict):
        return None
    value, currency = amount.get("value"), amount.get("currency")
    if not isinstance(value, str | int) or isinstance(value, bool) or not isinstance(currency, str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or abs(number) >= _AMOUNT_LIMIT:
        return f"{value} {currency}"
    if not _CURRENCY.fullmatch(currency):
        return f"{value} {currency}"
    return str(format_currency(number, currency))


def interaction_view(interaction: Interaction) -> InteractionView:
    body = interaction.body if isinstance(interaction.body, dict) else {}
    reference = body.get("reference")
    return InteractionView(
        type_label=type_label(interaction.type),
        occurred_at=interaction.occurred_at,
        summary=interaction.summary,
        amount=amount_text(body.get("amount")),
        reference=reference if isinstance(reference, str) and reference else None,
    )
