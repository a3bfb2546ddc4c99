"""What the passkey pages share: the relying party from the settings, the ceremony kept in
the browser's session between the options and the answer, and the messages for refusals.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from flask import Response, current_app, jsonify, session
from flask_babel import lazy_gettext as _l

from vrm_portal.accounts.passkeys.service import CHALLENGE_TTL, Ceremony, RelyingParty
from vrm_portal.web import APP_NAME

_KEY_PREFIX = "passkey_ceremony:"

REFUSALS = {
    "expired": _l(
        "This took too long, or the passkey was asked for in another tab. Please try again."
    ),
    "invalid": _l("The answer from your passkey did not pass our security checks."),
    "unknown": _l(
        "This passkey is not registered for your account here. It may have been removed: "
        "use another way."
    ),
    "cloned": _l(
        "For your safety this passkey was refused: the device that holds it may have been "
        "copied. Use another way, then check your passkeys."
    ),
    "duplicate": _l("This passkey is already registered."),
    "missing": _l(
        "Your browser sent no passkey. Passkeys need JavaScript and a browser that supports "
        "them; you can use another way."
    ),
}


def relying_party() -> RelyingParty:
    """The portal at its public address (``VRM_PUBLIC_BASE_URL``)."""
    return RelyingParty.from_base_url(str(current_app.config["PUBLIC_BASE_URL"]), APP_NAME)


def refusal(reason: str) -> str:
    return str(REFUSALS.get(reason, REFUSALS["invalid"]))


def _encode(raw: bytes | None) -> str | None:
    return base64.urlsafe_b64encode(raw).decode("ascii") if raw is not None else None


def _decode(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, ValueError):
        return None


def keep(ceremony: Ceremony) -> None:
    """Hold ``ceremony`` until the browser answers (one per purpose; a new one replaces it)."""
    session[_KEY_PREFIX + ceremony.purpose] = {
        "challenge": _encode(ceremony.challenge),
        "account_id": ceremony.account_id,
        "user_handle": _encode(ceremony.user_handle),
        "until": int(time.time() + CHALLENGE_TTL.total_seconds()),
    }


def take(purpose: str) -> Ceremony | None:
    """The ceremony of ``purpose`` this browser started, once; None if none or too old."""
    held = session.pop(_KEY_PREFIX + purpose, None)
    if not isinstance(held, dict) or time.time() > float(held.get("until", 0)):
        return None
    challenge = _decode(held.get("challenge"))
    account_id = held.get("account_id")
    if challenge is None or not (account_id is None or isinstance(account_id, int)):
        return None
    return Ceremony(purpose, challenge, account_id, _decode(held.get("user_handle")))


def options_response(options: dict[str, Any]) -> Response:
    """The options for the browser's WebAuthn call, as JSON (never cached)."""
    return jsonify(options)
