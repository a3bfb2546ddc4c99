"""Time-based one-time codes (TOTP, RFC 6238) for staff sign-in.

Staff (DPO, admin) must pass a second factor: they enrol an authenticator app once,
then give a fresh code at each sign-in. A code is accepted once only (replay guard).

Each enrolment attempt has its own secret, bound to one pending sign-in and usable for
a few minutes; the account's ``totp_secret`` is written only when the first code checks
out. Someone who once got past the password step therefore learns nothing that works
later: the real owner's enrolment gets another secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from sqlalchemy.orm import Session

from vrm_portal.accounts.errors import AccountError
from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import Account, EventKind
from vrm_portal.clock import utcnow

ISSUER = "VRM Portal"
STEP_SECONDS = 30
#: Codes of the previous and next time step are accepted too (clock drift).
DRIFT_STEPS = 1
#: How long one enrolment attempt's secret may be used.
ENROLMENT_TTL = timedelta(minutes=10)
#: Bytes of a TOTP secret: 160 bits, 32 characters of base32 (RFC 4226 recommends 160).
_SECRET_BYTES = 20


class InvalidCode(AccountError):
    """The code is wrong, expired, or was already used."""


class NotEnrolled(AccountError):
    pass


class EnrolmentExpired(AccountError):
    """The enrolment attempt is too old, or belongs to another sign-in: start a new one."""


@dataclass(frozen=True)
class Enrolment:
    """One attempt at enrolling an authenticator app, held by the browser (in its signed
    session) until it succeeds: which pending sign-in it belongs to, until when, and the
    random nonce its secret is derived from (see ``enrolment_secret``)."""

    sign_in: str
    nonce: str
    expires_at: datetime


def start_enrolment(account: Account, *, sign_in: str, now: datetime | None = None) -> Enrolment:
    """A new enrolment attempt for the pending sign-in ``sign_in``; stores nothing."""
    if account.has_two_factor:
        raise AccountError("two-factor authentication is already enabled")
    return Enrolment(
        sign_in=sign_in,
        nonce=secrets.token_urlsafe(16),
        expires_at=(now or utcnow()) + ENROLMENT_TTL,
    )


def is_current(enrolment: Enrolment, *, sign_in: str, now: datetime | None = None) -> bool:
    """Whether ``enrolment`` belongs to the pending sign-in ``sign_in`` and is still fresh."""
    return hmac.compare_digest(enrolment.sign_in, sign_in) and (
        (now or utcnow()) < enrolment.expires_at
    )


def enrolment_secret(key: bytes, account: Account, enrolment: Enrolment) -> str:
    """The base32 secret of one enrolment attempt, to show as a QR code and a key.

    It is derived (HMAC with the portal's secret ``key``) from the account, the pending
    sign-in and the attempt's nonce rather than kept in the session, so that the cookie
    never carries a second factor: a copy of an old cookie reveals nothing.
    """
    message = f"totp-enrolment\x00{account.id}\x00{enrolment.sign_in}\x00{enrolment.nonce}"
    digest = hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b32encode(digest[:_SECRET_BYTES]).decode("ascii")


def provisioning_uri(account: Account, secret: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=account.email, issuer_name=ISSUER
    )


def qr_code_data_uri(uri: str) -> str:
    """The otpauth URI as an SVG QR code, ready for an <img src>."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def _matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def confirm_enrolment(
    session: Session,
    account: Account,
    enrolment: Enrolment,
    code: str,
    *,
    key: bytes,
    sign_in: str,
    client: ClientInfo | None = None,
) -> None:
    """Enable two-factor authentication once the first code of this attempt's secret
    checks out; only then is the secret stored on the account.

    ``EnrolmentExpired`` when the attempt is too old or belongs to another pending sign-in
    than ``sign_in``; ``InvalidCode`` when the code is wrong.
    """
    if account.has_two_factor:
        raise AccountError("two-factor authentication is already enabled")
    now = utcnow()
    if not is_current(enrolment, sign_in=sign_in, now=now):
        raise EnrolmentExpired()
    secret = enrolment_secret(key, account, enrolment)
    step = _matching_step(secret, code, now, None)
    if step is None:
        record_event(session, account, EventKind.TWO_FACTOR_FAILED, client)
        raise InvalidCode()
    account.totp_secret = secret
    account.totp_enabled_at = now
    account.totp_last_step = step
    record_event(session, account, EventKind.TWO_FACTOR_ENABLED, client)
    session.flush()


def verify_code(
    session: Session, account: Account, code: str, *, client: ClientInfo | None = None
) -> None:
    """Accept a sign-in code, at most once; ``InvalidCode`` otherwise."""
    if not account.has_two_factor or account.totp_secret is None:
        raise NotEnrolled()
    step = _matching_step(account.totp_secret, code, utcnow(), account.totp_last_step)
    if step is None:
        record_event(session, account, EventKind.TWO_FACTOR_FAILED, client)
        raise InvalidCode()
    account.totp_last_step = step
    session.flush()


def reset_two_factor(session: Session, account: Account) -> None:
    """Forget the enrolment (lost phone): the next sign-in enrols again. Operator only."""
    account.totp_secret = None
    account.totp_enabled_at = None
    account.totp_last_step = None
    record_event(session, account, EventKind.TWO_FACTOR_RESET)
    session.flush()
