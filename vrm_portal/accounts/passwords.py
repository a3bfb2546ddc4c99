"""Argon2id password hashing and the password policy: 12 to 128 characters, and not easy
to guess (common passwords, keyboard patterns, repeats, the email address), judged by
zxcvbn's offline dictionaries, as OWASP ASVS asks. No composition rules."""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

MIN_LENGTH = 12
MAX_LENGTH = 128
#: zxcvbn score below which a password is refused: 0 and 1 mean under ~10^6 guesses.
MIN_STRENGTH_SCORE = 2

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
    """Why ``password`` is refused (a reason key the caller turns into a message), or None.

    Keys: ``too_short``, ``too_long``, ``same_as_email``, ``too_guessable``.
    """
    candidate = normalise(password)
    if len(candidate) < MIN_LENGTH:
        return "too_short"
    if len(candidate) > MAX_LENGTH:
        return "too_long"
    if email and candidate.casefold() == email.casefold():
        return "same_as_email"
    context = [email, email.split("@")[0]] if email else []
    strength = zxcvbn(candidate, user_inputs=context, max_length=MAX_LENGTH)
    if strength["score"] < MIN_STRENGTH_SCORE:
        return "too_guessable"
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
