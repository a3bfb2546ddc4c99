"""Random secrets for links and cookies; only their SHA-256 digest is ever stored."""

from __future__ import annotations

import hashlib
import secrets

#: 32 random bytes (256 bits), URL-safe.
SECRET_BYTES = 32


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
