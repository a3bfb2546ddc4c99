"""The app's receipt signing key: loaded (or, in development, created) at start-up."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app

from config import ConfigError
from vrm_portal.consent.receipts import (
    SigningKey,
    SigningKeyError,
    generate_key_file,
    load_key_file,
)
from vrm_portal.consent.service import Notary

_EXTENSION = "vrm_receipt_key"


def init_app(app: Flask) -> None:
    path = Path(app.config["RECEIPT_SIGNING_KEY_FILE"])
    if not path.exists() and app.config.get("RECEIPT_KEY_AUTOGENERATE"):
        generate_key_file(path)
        app.logger.info("created the receipt signing key %s", path)
    try:
        app.extensions[_EXTENSION] = load_key_file(path)
    except SigningKeyError as exc:
        raise ConfigError(f"VRM_RECEIPT_SIGNING_KEY_FILE: {exc}") from exc


def signing_key() -> SigningKey:
    key: SigningKey = current_app.extensions[_EXTENSION]
    return key


def current_notary() -> Notary:
    return Notary(signing_key(), str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/"))
