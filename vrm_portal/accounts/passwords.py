"""Argon2id password hashing and the password policy (12 to 128 characters)."""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 128

_hasher = PasswordHasher()
#: Verified against when the email is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-for-timing")


def configure(*, time_cost: int, memory_cost: int, parallelism: int) -> None:
    """Set the Argon2id cost (the test suite uses a cheap one)."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
    _DUMMY_HASH = _hasher.hash("not-a-real-password-for-timing")


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def policy_problem(password: str, email: str | None = None) -> str | None:
    """Why ``password`` is refused, in plain English (translated by the caller), or None."""
    length = len(normalise(password))
    if length < MIN_LENGTH:
        return "too_short"
    if length > MAX_LENGTH:
        return "too_long"
    if email and normalise(password).casefold() == email.casefold():
        return "same_as_email"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(normalise(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; spends the same effort when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, normalise(password)) and bool(
            password_hash
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
