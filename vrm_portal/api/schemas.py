"""The brand API's JSON shapes (pydantic): requests are validated with them, responses
are described by them, and the OpenAPI document is generated from them."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

from vrm_portal.brands.models import ChangeKind
from vrm_portal.history.models import InteractionType

#: Control characters (C0 but tab and line feed, DEL, C1): they garble pages and terminals.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: The same refusals as JSON Schema patterns (declared in the OpenAPI document); a detail's
#: key is a label: no control character at all.
TEXT_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
KEY_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"
_KEY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: An RFC 3339 date-time (JSON Schema's format date-time), offset included.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
#: The range of a detail's whole number: what a 64-bit integer holds (JSON in the database,
#: the brand's own parsers).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConsentOut(BaseModel):
    """An active consent: granted, to the purpose's current text, not expired."""

    purpose: str = Field(description="The purpose key, e.g. 'email-offers'.")
    category: str = Field(description="email-marketing, sms-marketing, postal-marketing, …")
    version: int = Field(description="The text version the consumer agreed to (current).")
    granted_at: datetime
    expires_at: datetime


class Budget(BaseModel):
    min: int | None
    max: int | None
    currency: str


class IntentOut(BaseModel):
    category: str
    summary: str
    horizon_months: int
    budget: Budget | None
    ends_on: date


class Profile(BaseModel):
    """Only the fields an active consent covers are present: names and language under any
    channel purpose, ``email`` under an email purpose, ``phone`` under SMS,
    ``postal_address`` under post. A covered field the consumer left empty is null."""

    given_name: str | None = None
    family_name: str | None = None
    language: str | None = None
    email: str | None = None
    phone: str | None = None
    postal_address: str | None = None


class ConsumerOut(BaseModel):
    consumer_id: str = Field(description="Your brand's pairwise id for this consumer.")
    known_since: datetime
    consents: list[ConsentOut]
    profile: Profile
    interests: list[str] | None = Field(
        None, description="Topic keys; present only under an active personalisation consent."
    )
    intents: list[IntentOut] | None = Field(
        None, description="Plans shared with your brand; only under personalisation."
    )


class ConsumerPage(BaseModel):
    items: list[ConsumerOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page."
    )


class ChangeOut(BaseModel):
    seq: int = Field(description="Position in your brand's feed: gapless, increasing.")
    type: ChangeKind
    consumer_id: str | None = Field(
        description="Your pairwise id for the consumer; null for log.checkpoint entries."
    )
    occurred_at: datetime
    data: dict[str, Any]


class ChangePage(BaseModel):
    items: list[ChangeOut]
    next_cursor: str = Field(
        description="Pass as ?after= next time; it stays put when nothing new has happened."
    )


class Amount(_Strict):
    value: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}(\.[0-9]{1,2})?$")] = Field(
        description="A decimal amount as a string, e.g. '129.90' (at most 2 decimals)."
    )
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def _one_detail_value(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One error naming the detail, rather than one per kind of value it is not."""
    out_of_range = (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not INT64_MIN <= value <= INT64_MAX
    )
    try:
        if not out_of_range:
            return handler(value)
    except ValidationError:
        pass
    raise PydanticCustomError(
        "detail_value",
        "must be text (at most 200 characters, no control characters), a whole number that "
        "fits in 64 bits, a finite number, or true or false",
    )


def _printable_key(key: str) -> str:
    if _KEY_CONTROL.search(key):
        raise PydanticCustomError("detail_key", "control characters are not allowed in a key")
    return key


def _declare_key_pattern(schema: dict[str, Any]) -> None:
    # Pydantic would declare a key pattern as ``patternProperties``, which leaves other
    # keys unconstrained; ``propertyNames`` says what it means.
    schema["propertyNames"]["pattern"] = KEY_PATTERN


DetailKey = Annotated[
    str, StringConstraints(min_length=1, max_length=40), AfterValidator(_printable_key)
]
# Strict: "000…0" (longer than a text may be) is not to be read as the number 0.
DetailValue = Annotated[
    Annotated[str, StringConstraints(max_length=200, pattern=TEXT_PATTERN), Strict()]
    | Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX), Strict()]
    | Annotated[float, Field(allow_inf_nan=False), Strict()]
    | Annotated[bool, Strict()],
    WrapValidator(_one_detail_value),
]


class InteractionIn(_Strict):
    type: InteractionType
    occurred_at: datetime = Field(description="When it happened (RFC 3339, with an offset).")
    summary: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=200, pattern=TEXT_PATTERN
        ),
    ]
    reference: Annotated[str, StringConstraints(max_length=100, pattern=TEXT_PATTERN)] | None = None
    channel: Annotated[str, StringConstraints(max_length=40, pattern=TEXT_PATTERN)] | None = None
    amount: Amount | None = None
    details: dict[DetailKey, DetailValue] = Field(
        default_factory=dict, max_length=20, json_schema_extra=_declare_key_pattern
    )

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: Any) -> Any:
        # Pydantic would also take a number of seconds (0, "1700000000") or a date alone:
        # the document says RFC 3339 text (format date-time), and only that is accepted.
        if not isinstance(value, str) or not _RFC3339.fullmatch(value):
            raise ValueError("give an RFC 3339 time with an offset, e.g. 2026-11-29T10:00:00Z")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone offset, e.g. 2026-11-29T10:00:00Z")
        return value

    @field_validator("summary", "reference", "channel")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        return value


class InteractionOut(BaseModel):
    interaction_id: str
    consumer_id: str
    type: InteractionType
    occurred_at: datetime
    recorded_at: datetime
    summary: str
    reference: str | None
    channel: str | None
    amount: Amount | None
    details: dict[str, Any]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
