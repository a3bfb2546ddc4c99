"""The log's checkpoint signing key (Ed25519), separate from the receipt key.

``VRM_LOG_SIGNING_KEY_FILE`` names a PKCS#8 PEM file; in development it is created in
``instance/`` when missing. The key's name in notes is the log's origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, current_app

from config import ConfigError
from vrm_portal.log import note

_EXTENSION = "vrm_log_signer"


@dataclass(frozen=True)
class LogSigner:
    """Who signs the checkpoints: the origin (also the key name) and the private key."""

    origin: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return note.raw_public_key(self.private_key.public_key())

    @property
    def verifier_key(self) -> str:
        return note.verifier_key(self.origin, self.public_key)

    def sign(self, text: str) -> str:
        return note.sign(text, self.origin, self.private_key)


def default_origin(public_base_url: str) -> str:
    """``<host of the public base URL>/consent-log``, e.g. ``vrm.example.com/consent-log``."""
    parts = urlsplit(public_base_url)
    host = parts.hostname or "localhost"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{host}/consent-log"


def generate_key_file(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)


def init_app(app: Flask) -> None:
    path = Path(app.config["LOG_SIGNING_KEY_FILE"])
    if not path.exists() and app.config.get("LOG_KEY_AUTOGENERATE"):
        generate_key_file(path)
        app.logger.info("created the log signing key %s", path)
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"VRM_LOG_SIGNING_KEY_FILE: cannot read {path}: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError(f"VRM_LOG_SIGNING_KEY_FILE: {path} must hold an Ed25519 key")
    origin = app.config.get("LOG_ORIGIN") or default_origin(app.config["PUBLIC_BASE_URL"])
    if any(c.isspace() for c in origin) or "+" in origin or not origin:
        raise ConfigError("VRM_LOG_ORIGIN must be one line with no spaces and no '+'")
    app.extensions[_EXTENSION] = LogSigner(origin, private)


def log_signer() -> LogSigner:
    signer: LogSigner = current_app.extensions[_EXTENSION]
    return signer
