"""Server-side sessions of signed-in browsers: start, resume (idle and absolute timeouts),
end and revoke. Revoking a row signs that browser out, remember-me cookie included.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from vrm_portal.accounts.errors import SessionNotFound
from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import (
    Account,
    AuthSession,
    EventKind,
)
from vrm_portal.accounts.tokens import hash_secret, new_secret
from vrm_portal.clock import utcnow

#: last_seen_at is written at most once a minute per session, not on every request.
_LAST_SEEN_RESOLUTION = timedelta(minutes=1)
#: Largest value of an integer primary key (32-bit on PostgreSQL).
_MAX_ROW_ID = 2**31 - 1


def start_session(
    session: Session,
    account: Account,
    *,
    remember: bool,
    lifetime: timedelta,
    client: ClientInfo | None = None,
) -> tuple[AuthSession, str]:
    """Open a new server-side session; returns it and the secret token for the cookie."""
    client = (client or ClientInfo()).clipped()
    now = utcnow()
    token = new_secret()
    auth_session = AuthSession(
        account_id=account.id,
        token_hash=hash_secret(token),
        remember=remember,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        user_agent=client.user_agent,
        ip_address=client.ip_address,
    )
    session.add(auth_session)
    session.flush()
    record_event(session, account, EventKind.SIGNED_IN, client, remember=remember)
    return auth_session, token


def resume_session(session: Session, token: str, *, idle_timeout: timedelta) -> AuthSession | None:
    """The live session for a cookie token, refreshed; None when revoked or timed out.

    Remembered sessions are not subject to the idle timeout, only to their absolute end.
    """
    if not token or len(token) > 128:
        return None
    # The account comes in the same statement: every signed-in request needs it.
    auth_session = session.scalars(
        select(AuthSession)
        .options(joinedload(AuthSession.account))
        .where(AuthSession.token_hash == hash_secret(token))
    ).one_or_none()
    if auth_session is None or auth_session.revoked_at is not None:
        return None
    now = utcnow()
    if auth_session.account.disabled_at is not None:
        _revoke(auth_session, "disabled", now)
        return None
    if auth_session.expires_at <= now:
        _revoke(auth_session, "expired", now)
        return None
    if not auth_session.remember and now - auth_session.last_seen_at > idle_timeout:
        _revoke(auth_session, "idle", now)
        return None
    if now - auth_session.last_seen_at >= _LAST_SEEN_RESOLUTION:
        auth_session.last_seen_at = now
    session.flush()
    return auth_session


def _revoke(auth_session: AuthSession, reason: str, now: datetime) -> None:
    auth_session.revoked_at = now
    auth_session.revoked_reason = reason


def end_session(
    session: Session, auth_session: AuthSession, *, client: ClientInfo | None = None
) -> None:
    """Sign out: the session (and any remember-me cookie for it) stops working at once."""
    if auth_session.revoked_at is None:
        _revoke(auth_session, "signed_out", utcnow())
        record_event(session, auth_session.account, EventKind.SIGNED_OUT, client)
    session.flush()


def list_active_sessions(session: Session, account: Account) -> list[AuthSession]:
    now = utcnow()
    return list(
        session.scalars(
            select(AuthSession)
            .where(
                AuthSession.account_id == account.id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
            .order_by(AuthSession.last_seen_at.desc(), AuthSession.id.desc())
        )
    )


def revoke_session(
    session: Session,
    account: Account,
    session_id: int,
    *,
    client: ClientInfo | None = None,
) -> AuthSession:
    """Sign out one of the account's own sessions; another account's id is not found."""
    if not 0 < session_id <= _MAX_ROW_ID:  # beyond the column: the database would refuse it
        raise SessionNotFound()
    auth_session = session.get(AuthSession, session_id)
    if auth_session is None or auth_session.account_id != account.id:
        raise SessionNotFound()
    if auth_session.revoked_at is None:
        _revoke(auth_session, "revoked_by_owner", utcnow())
        record_event(
            session, account, EventKind.SESSION_REVOKED, client, session_id=auth_session.id
        )
    session.flush()
    return auth_session


def revoke_other_sessions(
    session: Session,
    account: Account,
    *,
    keep: AuthSession | None,
    reason: str = "revoked_by_owner",
    client: ClientInfo | None = None,
) -> int:
    """Sign out every session of the account except ``keep``; returns how many ended."""
    now = utcnow()
    query = update(AuthSession).where(
        AuthSession.account_id == account.id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(AuthSession.id != keep.id)
    result = session.execute(query.values(revoked_at=now, revoked_reason=reason))
    count: int = result.rowcount  # type: ignore[attr-defined]
    if count and reason == "revoked_by_owner":
        record_event(session, account, EventKind.SESSION_REVOKED, client, count=count)
    session.flush()
    return count
