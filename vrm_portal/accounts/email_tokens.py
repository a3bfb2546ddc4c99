"""Single-use, expiring secrets sent by email: verification, password reset, email change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vrm_portal.accounts.errors import TokenRejected
from vrm_portal.accounts.models import (
    Account,
    EmailToken,
    TokenPurpose,
)
from vrm_portal.accounts.tokens import hash_secret, new_secret
from vrm_portal.clock import utcnow


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued emailed token; ``secret`` goes in the link and is never stored."""

    secret: str
    record: EmailToken


def issue_email_token(
    session: Session,
    account: Account,
    purpose: TokenPurpose,
    ttl: timedelta,
    *,
    email: str | None = None,
) -> IssuedToken:
    """A new single-use token for ``purpose``; earlier unused ones of that purpose lapse."""
    now = utcnow()
    session.execute(
        update(EmailToken)
        .where(
            EmailToken.account_id == account.id,
            EmailToken.purpose == purpose.value,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    secret = new_secret()
    record = EmailToken(
        account_id=account.id,
        purpose=purpose.value,
        token_hash=hash_secret(secret),
        email=email or account.email,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(record)
    session.flush()
    return IssuedToken(secret, record)


def peek_email_token(
    session: Session,
    secret: str,
    purpose: TokenPurpose,
    *,
    signed_in: Account | None = None,
) -> EmailToken:
    """The usable token behind ``secret``, without using it; else ``TokenRejected``."""
    if not secret or len(secret) > 128:
        raise TokenRejected("unknown")
    record = session.scalars(
        select(EmailToken).where(
            EmailToken.token_hash == hash_secret(secret), EmailToken.purpose == purpose.value
        )
    ).one_or_none()
    if record is None:
        raise TokenRejected("unknown")
    if signed_in is not None and record.account_id != signed_in.id:
        raise TokenRejected("other_account")
    if record.used_at is not None:
        raise TokenRejected("used")
    if record.expires_at <= utcnow():
        raise TokenRejected("expired")
    return record


def use_email_token(
    session: Session, secret: str, purpose: TokenPurpose, signed_in: Account | None
) -> EmailToken:
    record = peek_email_token(session, secret, purpose, signed_in=signed_in)
    claimed = session.execute(
        update(EmailToken)
        .where(EmailToken.id == record.id, EmailToken.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise TokenRejected("used")
    session.refresh(record)
    return record
