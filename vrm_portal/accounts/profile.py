"""The consumer's profile: names, phone and postal address that brands may read under consent.

Brands read each field only under an active consent that covers it (see the brand API), so
the portal stores exactly what the consumer typed, tidied: trimmed, in Unicode NFC, the phone
as E.164 and the address as at most six short lines, the shape of an envelope.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import phonenumbers
from sqlalchemy.orm import Session

from vrm_portal.accounts.errors import AccountError
from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import Account, EventKind

NAME_MAX = 80
#: Longest phone number as typed (spaces, dots, a leading 00…) that is worth parsing.
PHONE_INPUT_MAX = 40
#: Region assumed for a number typed without its country code (``06 12 34 56 78``).
PHONE_DEFAULT_REGION = "FR"
ADDRESS_MAX = 300
ADDRESS_LINES_MAX = 6
ADDRESS_LINE_MAX = 60

#: The profile fields, in the order the page shows them and events list them.
PROFILE_FIELDS = ("given_name", "family_name", "phone", "postal_address")

#: Characters that are not text, beyond the C0/C1 controls: line and paragraph separators,
#: and the bidirectional overrides that make a name display differently from what it is.
_INVISIBLE_CONTROLS = frozenset(
    "\u2028\u2029\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class ProfileInvalid(AccountError):
    """A profile field breaks a rule. ``field`` is one of ``PROFILE_FIELDS``; ``reason`` is
    ``too_long``, ``control_characters``, ``invalid_phone``, ``too_many_lines`` or
    ``line_too_long``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ProfileInput:
    """The profile as sent by the consumer; an empty string removes a field."""

    given_name: str = ""
    family_name: str = ""
    phone: str = ""
    postal_address: str = ""


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") or ch in _INVISIBLE_CONTROLS for ch in text)


def normalise_name(raw: str, field: str = "given_name") -> str:
    """A given or family name, trimmed; ``ProfileInvalid`` when it cannot be stored."""
    name = unicodedata.normalize("NFC", raw.strip())
    if _has_control(name):
        raise ProfileInvalid(field, "control_characters")
    if len(name) > NAME_MAX:
        raise ProfileInvalid(field, "too_long")
    return name


def normalise_phone(raw: str) -> str:
    """The E.164 form of a phone number (French when it has no country code), or ""."""
    typed = raw.strip()
    if not typed:
        return ""
    if _has_control(typed):
        raise ProfileInvalid("phone", "control_characters")
    if len(typed) > PHONE_INPUT_MAX:
        raise ProfileInvalid("phone", "invalid_phone")
    try:
        number = phonenumbers.parse(typed, PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ProfileInvalid("phone", "invalid_phone") from exc
    if not phonenumbers.is_valid_number(number):
        raise ProfileInvalid("phone", "invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_postal_address(raw: str) -> str:
    """The address as lines joined by ``\\n``: each trimmed, blank ones dropped."""
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n"))
    if _has_control(text.replace("\n", "")):
        raise ProfileInvalid("postal_address", "control_characters")
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    if len(lines) > ADDRESS_LINES_MAX:
        raise ProfileInvalid("postal_address", "too_many_lines")
    if any(len(line) > ADDRESS_LINE_MAX for line in lines):
        raise ProfileInvalid("postal_address", "line_too_long")
    address = "\n".join(lines)
    if len(address) > ADDRESS_MAX:
        raise ProfileInvalid("postal_address", "too_long")
    return address


def normalise_profile(data: ProfileInput) -> ProfileInput:
    """``data`` in its stored form; ``ProfileInvalid`` names the first field refused."""
    return ProfileInput(
        given_name=normalise_name(data.given_name, "given_name"),
        family_name=normalise_name(data.family_name, "family_name"),
        phone=normalise_phone(data.phone),
        postal_address=normalise_postal_address(data.postal_address),
    )


def update_profile(
    session: Session, account: Account, data: ProfileInput, client: ClientInfo | None = None
) -> list[str]:
    """Store the consumer's profile and return the names of the fields that changed.

    The security history records which fields changed, never their values: it is shown
    on every device signed in to the account, and kept longer than the values themselves.
    """
    wanted = normalise_profile(data)
    changed = [
        field for field in PROFILE_FIELDS if getattr(account, field) != getattr(wanted, field)
    ]
    if not changed:
        return []
    for field in changed:
        setattr(account, field, getattr(wanted, field))
    session.flush()
    record_event(session, account, EventKind.PROFILE_CHANGED, client, fields=changed)
    return changed
