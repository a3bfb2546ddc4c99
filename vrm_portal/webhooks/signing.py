"""Webhook signatures, in the style of Standard Webhooks.

Every delivery carries three headers:

- ``Webhook-Id``: the delivery's id, the same on every retry (deduplicate on it);
- ``Webhook-Timestamp``: when this attempt was signed, in unix seconds;
- ``Webhook-Signature``: ``v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``, where
  the key is the whole secret as UTF-8 (``whsec_...`` included) and ``body`` the exact
  bytes of the request body. Several space-separated signatures may be sent (during a
  secret rotation); one valid signature is enough.

This module uses the standard library only, so brands can copy ``verify`` (and
``SignatureError``) into their receiver as it is.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

ID_HEADER = "Webhook-Id"
TIMESTAMP_HEADER = "Webhook-Timestamp"
SIGNATURE_HEADER = "Webhook-Signature"
SIGNATURE_VERSION = "v1"
#: Seconds a receiver accepts between the signing time and its own clock (replays).
DEFAULT_TOLERANCE = 300


class SignatureError(ValueError):
    """The request is not a genuine, fresh webhook delivery; the message says why."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The signature headers of one delivery attempt."""
    return {
        ID_HEADER: webhook_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={signature(secret, timestamp, body)}",
    }


def sign_with_each(
    secrets: list[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The signature headers with one ``v1=`` signature per secret, space-separated, in
    the order given: during a secret rotation's overlap, the new key's and the old key's."""
    headers = sign(secrets[0], webhook_id, timestamp, body)
    headers[SIGNATURE_HEADER] = " ".join(
        f"{SIGNATURE_VERSION}={signature(secret, timestamp, body)}" for secret in secrets
    )
    return headers


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> str:
    """Check a received webhook; returns its ``Webhook-Id`` or raises ``SignatureError``.

    ``headers`` is any mapping of the request headers (names are matched without regard
    to case), ``body`` the raw request body, before any JSON parsing. ``now`` defaults to
    the current time; a timestamp more than ``tolerance`` seconds away is refused, so a
    captured request cannot be replayed later. Process each ``Webhook-Id`` once: a
    delivery can arrive more than once.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get(ID_HEADER.lower(), "").strip()
    raw_timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "").strip()
    raw_signatures = lowered.get(SIGNATURE_HEADER.lower(), "").strip()
    if not webhook_id or not raw_timestamp or not raw_signatures:
        raise SignatureError("missing Webhook-Id, Webhook-Timestamp or Webhook-Signature header")
    try:
        timestamp = int(raw_timestamp)
    except ValueError as exc:
        raise SignatureError("Webhook-Timestamp is not a whole number of seconds") from exc
    current = (now or datetime.now(UTC)).timestamp()
    if abs(current - timestamp) > tolerance:
        raise SignatureError("Webhook-Timestamp is too far from the current time")
    expected = signature(secret, timestamp, body)
    for candidate in raw_signatures.split():
        version, _, value = candidate.partition("=")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value, expected):
            return webhook_id
    raise SignatureError("no valid signature")
