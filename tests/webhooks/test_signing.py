"""The signature scheme, as a brand's receiver checks it with ``verify``."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from vrm_portal.webhooks.signing import SignatureError, sign, verify

SECRET = "whsec_test-secret"
BODY = b'{"seq":1,"type":"consent.granted"}'
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMESTAMP = int(NOW.timestamp())


def test_the_signature_is_hex_hmac_sha256_of_timestamp_dot_body():
    headers = sign(SECRET, "42", TIMESTAMP, BODY)
    expected = hmac.new(
        SECRET.encode(), f"{TIMESTAMP}.".encode() + BODY, hashlib.sha256
    ).hexdigest()
    assert headers == {
        "Webhook-Id": "42",
        "Webhook-Timestamp": str(TIMESTAMP),
        "Webhook-Signature": f"v1={expected}",
    }


def test_a_genuine_delivery_verifies_and_gives_its_id():
    headers = sign(SECRET, "42", TIMESTAMP, BODY)
    assert verify(SECRET, headers, BODY, NOW) == "42"
    lowered = {name.lower(): value for name, value in headers.items()}
    assert verify(SECRET, lowered, BODY, NOW + timedelta(seconds=299)) == "42"


@pytest.mark.parametrize(
    ("secret", "body", "now", "reason"),
    [
        ("whsec_other", BODY, NOW, "no valid signature"),
        (SECRET, BODY + b" ", NOW, "no valid signature"),
        (SECRET, BODY, NOW + timedelta(seconds=301), "too far"),
        (SECRET, BODY, NOW - timedelta(seconds=301), "too far"),
    ],
)
def test_forged_altered_or_replayed_deliveries_are_refused(secret, body, now, reason):
    headers = sign(SECRET, "42", TIMESTAMP, BODY)
    with pytest.raises(SignatureError, match=reason):
        verify(secret, headers, body, now)


def test_missing_or_malformed_headers_are_refused():
    headers = sign(SECRET, "42", TIMESTAMP, BODY)
    for name in headers:
        partial = {k: v for k, v in headers.items() if k != name}
        with pytest.raises(SignatureError, match="missing"):
            verify(SECRET, partial, BODY, NOW)
    with pytest.raises(SignatureError, match="whole number"):
        verify(SECRET, headers | {"Webhook-Timestamp": "soon"}, BODY, NOW)
    with pytest.raises(SignatureError, match="no valid signature"):
        verify(SECRET, headers | {"Webhook-Signature": "v0=abc"}, BODY, NOW)


def test_one_valid_signature_among_several_is_enough():
    """During a secret rotation a sender may sign with the old and the new secret."""
    old = sign("whsec_old", "42", TIMESTAMP, BODY)["Webhook-Signature"]
    new = sign(SECRET, "42", TIMESTAMP, BODY)["Webhook-Signature"]
    headers = sign(SECRET, "42", TIMESTAMP, BODY) | {"Webhook-Signature": f"{old} {new}"}
    assert verify(SECRET, headers, BODY, NOW) == "42"
