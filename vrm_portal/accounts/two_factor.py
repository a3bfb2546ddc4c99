"""Time-based one-time codes (TOTP, RFC 6238) for staff sign-in.

Staff (DPO, admin) must pass a second factor: they enrol an authenticator app once,
then give a fresh code at each sign-in. A code is accepted once only (replay guard).
"""

from __future__ import annotations

import hmac
from datetime import datetime

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


class InvalidCode(AccountError):
    """The code is wrong, expired, or was already used."""


class NotEnrolled(AccountError):
    pass


def enrolment_secret(session: Session, account: Account) -> str:
    """The secret to show while enrolling: kept until confirmed, new if there is none."""
    if account.has_two_factor:
        raise AccountError("two-factor authentication is already enabled")
    if account.totp_secret is None:
        account.totp_secret = pyotp.random_base32()
        session.flush()
    return account.totp_secret


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
    session: Session, account: Account, code: str, *, client: ClientInfo | None = None
) -> None:
    """Enable two-factor authentication once the first code from the app checks out."""
    if account.totp_secret is None:
        raise NotEnrolled()
    step = _matching_step(account.totp_secret, code, utcnow(), None)
    if step is None:
        record_event(session, account, EventKind.TWO_FACTOR_FAILED, client)
        raise InvalidCode()
    account.totp_enabled_at = utcnow()
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
