"""The app's receipt keys: loaded (or, in development, created) at start-up.

The current key signs; the retired ones (public halves only) are served in the JWKS so
that older receipts still verify. ``vrm rotate-receipt-key`` changes the files; every
process reads them again when it restarts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, current_app

from config import ConfigError
from vrm_portal.consent.receipt_keys import ReceiptKeys, load_retired_keys
from vrm_portal.consent.receipts import (
    SigningKey,
    SigningKeyError,
    generate_key_file,
    load_key_file,
)
from vrm_portal.consent.service import Notary

_EXTENSION = "vrm_receipt_key"
_KEYS_EXTENSION = "vrm_receipt_keys"


def init_app(app: Flask) -> None:
    path = Path(app.config["RECEIPT_SIGNING_KEY_FILE"])
    if not path.exists() and app.config.get("RECEIPT_KEY_AUTOGENERATE"):
        generate_key_file(path)
        app.logger.info("created the receipt signing key %s", path)
    try:
        current = load_key_file(path)
    except SigningKeyError as exc:
        raise ConfigError(f"VRM_RECEIPT_SIGNING_KEY_FILE: {exc}") from exc
    try:
        retired = load_retired_keys(Path(app.config["RECEIPT_RETIRED_KEYS_FILE"]))
    except SigningKeyError as exc:
        raise ConfigError(f"VRM_RECEIPT_RETIRED_KEYS_FILE: {exc}") from exc
    app.extensions[_EXTENSION] = current
    app.extensions[_KEYS_EXTENSION] = ReceiptKeys(current, retired)


def signing_key() -> SigningKey:
    """The key that signs new receipts."""
    key: SigningKey = current_app.extensions[_EXTENSION]
    return key


def receipt_jwks() -> dict[str, list[dict[str, Any]]]:
    """The public JWKS of ``/.well-known/jwks.json``: the current key, then the retired."""
    keys: ReceiptKeys = current_app.extensions[_KEYS_EXTENSION]
    return keys.jwks()


def current_notary() -> Notary:
    return Notary(signing_key(), str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/"))
