"""Account services: registration, verification, sign-in sessions, password and email changes.

Plain functions over a SQLAlchemy session: no request, no templates. They flush, never
commit; the caller's transaction decides. Failures are the named exceptions below.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vrm_portal.accounts import passwords
from vrm_portal.accounts.models import (
    Account,
    AccountEvent,
    AuthSession,
    EmailToken,
    EventKind,
    StaffRole,
    TokenPurpose,
)
from vrm_portal.clock import utcnow

SUPPORTED_LOCALES = ("en", "fr")
_LAST_SEEN_RESOLUTION = timedelta(minutes=1)
#: Largest value of an integer primary key (32-bit on PostgreSQL).
_MAX_ROW_ID = 2**31 - 1


class AccountError(Exception):
    """Base of the accounts domain errors."""


class InvalidEmail(AccountError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PasswordRejected(AccountError):
    """The password breaks the policy; ``reason`` is a key of ``passwords.policy_problem``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidCredentials(AccountError):
    """Unknown email or wrong password: deliberately the same error for both."""


class EmailNotVerified(AccountError):
    def __init__(self, account: Account) -> None:
        super().__init__("email not verified")
        self.account = account


class WrongCurrentPassword(AccountError):
    """Re-authentication failed."""


class TokenRejected(AccountError):
    """An emailed link that cannot be used; ``reason``: unknown, used, expired, other_account,
    email_taken."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SessionNotFound(AccountError):
    pass


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, recorded in sessions and the security history."""

    ip_address: str | None = None
    user_agent: str | None = None

    def clipped(self) -> ClientInfo:
        return ClientInfo(
            self.ip_address[:45] if self.ip_address else None,
            self.user_agent[:255] if self.user_agent else None,
        )


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued emailed token; ``secret`` goes in the link and is never stored."""

    secret: str
    record: EmailToken


@dataclass(frozen=True)
class Registration:
    """Outcome of a registration: a new account, or the one already holding the address."""

    account: Account
    created: bool
    verification: IssuedToken | None


def normalise_email(raw: str) -> str:
    """The canonical form of an address, or ``InvalidEmail`` saying what is wrong."""
    candidate = raw.strip()
    if len(candidate) > 254:
        raise InvalidEmail("too_long")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    return result.normalized.lower()


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def find_account_by_email(session: Session, email: str) -> Account | None:
    try:
        normalised = normalise_email(email)
    except InvalidEmail:
        return None
    return session.scalars(select(Account).where(Account.email == normalised)).one_or_none()


def record_event(
    session: Session,
    account: Account,
    kind: EventKind,
    client: ClientInfo | None = None,
    **detail: Any,
) -> AccountEvent:
    """Append an entry to the account's security history."""
    client = (client or ClientInfo()).clipped()
    event = AccountEvent(
        account_id=account.id,
        kind=kind.value,
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


def _check_password(password: str, email: str | None) -> None:
    problem = passwords.policy_problem(password, email)
    if problem:
        raise PasswordRejected(problem)


def register_account(
    session: Session,
    email: str,
    password: str,
    *,
    locale: str | None = None,
    client: ClientInfo | None = None,
    verification_ttl: timedelta,
) -> Registration:
    """Create an unverified account, or report the one that already holds the address.

    The caller must answer both outcomes the same way to the visitor (no account
    enumeration) and tell the existing owner by email instead.
    """
    normalised = normalise_email(email)
    _check_password(password, normalised)
    existing = session.scalars(select(Account).where(Account.email == normalised)).one_or_none()
    if existing is not None:
        passwords.hash_password(password)  # same cost as a new account: no timing oracle
        return Registration(existing, created=False, verification=None)
    account = Account(
        email=normalised,
        password_hash=passwords.hash_password(password),
        password_changed_at=utcnow(),
        locale=locale if locale in SUPPORTED_LOCALES else None,
    )
    session.add(account)
    session.flush()
    record_event(session, account, EventKind.REGISTERED, client)
    token = issue_email_token(session, account, TokenPurpose.VERIFY_EMAIL, verification_ttl)
    return Registration(account, created=True, verification=token)


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
    secret = secrets.token_urlsafe(32)
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


def _use_email_token(
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


def verify_email(
    session: Session,
    secret: str,
    *,
    signed_in: Account | None = None,
    client: ClientInfo | None = None,
) -> Account:
    """Mark the account's address verified through the emailed link (single use)."""
    record = _use_email_token(session, secret, TokenPurpose.VERIFY_EMAIL, signed_in)
    account = record.account
    if record.email != account.email:
        raise TokenRejected("unknown")
    if account.email_verified_at is None:
        account.email_verified_at = utcnow()
        record_event(session, account, EventKind.EMAIL_VERIFIED, client)
    session.flush()
    return account


def authenticate(
    session: Session, email: str, password: str, *, client: ClientInfo | None = None
) -> Account:
    """The account for these credentials, or ``InvalidCredentials`` whatever was wrong."""
    account = find_account_by_email(session, email)
    valid = passwords.verify_password(account.password_hash if account else None, password)
    if account is None:
        raise InvalidCredentials()
    if not valid:
        record_event(session, account, EventKind.SIGN_IN_FAILED, client)
        raise InvalidCredentials()
    if account.password_hash and passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
    if not account.is_verified:
        raise EmailNotVerified(account)
    return account


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
    token = secrets.token_urlsafe(32)
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
    auth_session = session.scalars(
        select(AuthSession).where(AuthSession.token_hash == hash_secret(token))
    ).one_or_none()
    if auth_session is None or auth_session.revoked_at is not None:
        return None
    now = utcnow()
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


def reauthenticate(session: Session, account: Account, password: str) -> None:
    """Step-up check before a sensitive change; ``WrongCurrentPassword`` when it fails."""
    if not passwords.verify_password(account.password_hash, password):
        raise WrongCurrentPassword()


def _set_password(account: Account, new_password: str) -> None:
    _check_password(new_password, account.email)
    account.password_hash = passwords.hash_password(new_password)
    account.password_changed_at = utcnow()


def change_password(
    session: Session,
    account: Account,
    current_password: str,
    new_password: str,
    *,
    keep: AuthSession | None,
    client: ClientInfo | None = None,
) -> int:
    """Change the password after re-authentication and sign out every other session."""
    reauthenticate(session, account, current_password)
    _set_password(account, new_password)
    ended = revoke_other_sessions(session, account, keep=keep, reason="password_changed")
    record_event(session, account, EventKind.PASSWORD_CHANGED, client, other_sessions_ended=ended)
    return ended


def request_password_reset(
    session: Session, email: str, *, ttl: timedelta, client: ClientInfo | None = None
) -> IssuedToken | None:
    """A reset token for the address's account, or None when there is no such account."""
    account = find_account_by_email(session, email)
    if account is None:
        return None
    record_event(session, account, EventKind.PASSWORD_RESET_REQUESTED, client)
    return issue_email_token(session, account, TokenPurpose.RESET_PASSWORD, ttl)


def reset_password(
    session: Session, secret: str, new_password: str, *, client: ClientInfo | None = None
) -> Account:
    """Set a new password through a reset link; every session of the account ends.

    Following the emailed link also proves the address, so it counts as verification.
    """
    record = peek_email_token(session, secret, TokenPurpose.RESET_PASSWORD)
    _check_password(new_password, record.account.email)
    record = _use_email_token(session, secret, TokenPurpose.RESET_PASSWORD, None)
    account = record.account
    _set_password(account, new_password)
    if account.email_verified_at is None and record.email == account.email:
        account.email_verified_at = utcnow()
    revoke_other_sessions(session, account, keep=None, reason="password_reset")
    record_event(session, account, EventKind.PASSWORD_RESET, client)
    return account


def request_email_change(
    session: Session,
    account: Account,
    current_password: str,
    new_email: str,
    *,
    ttl: timedelta,
    client: ClientInfo | None = None,
) -> IssuedToken | None:
    """Re-authenticate, then issue a confirmation token for ``new_email``.

    Returns None when the address already belongs to an account: the caller tells the
    visitor the same thing either way and warns that address's owner instead.
    """
    reauthenticate(session, account, current_password)
    normalised = normalise_email(new_email)
    if normalised == account.email:
        raise InvalidEmail("same_as_current")
    taken = session.scalars(select(Account.id).where(Account.email == normalised)).first()
    record_event(session, account, EventKind.EMAIL_CHANGE_REQUESTED, client)
    if taken is not None:
        return None
    return issue_email_token(session, account, TokenPurpose.CHANGE_EMAIL, ttl, email=normalised)


def confirm_email_change(
    session: Session,
    secret: str,
    *,
    signed_in: Account,
    client: ClientInfo | None = None,
) -> tuple[Account, str]:
    """Switch to the confirmed new address; returns the account and its old address.

    Links still pending in the old mailbox (a password reset, say) lapse: whoever reads
    that mailbox must not keep a way into the account.
    """
    record = _use_email_token(session, secret, TokenPurpose.CHANGE_EMAIL, signed_in)
    account = record.account
    taken = session.scalars(
        select(Account.id).where(Account.email == record.email, Account.id != account.id)
    ).first()
    if taken is not None:
        raise TokenRejected("email_taken")
    old_email = account.email
    account.email = record.email
    account.email_verified_at = utcnow()
    session.execute(
        update(EmailToken)
        .where(EmailToken.account_id == account.id, EmailToken.used_at.is_(None))
        .values(used_at=utcnow())
    )
    session.flush()
    record_event(session, account, EventKind.EMAIL_CHANGED, client)
    return account, old_email


def set_locale(session: Session, account: Account, locale: str) -> None:
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"unsupported locale {locale!r}")
    if account.locale != locale:
        account.locale = locale
        record_event(session, account, EventKind.LOCALE_CHANGED, locale=locale)
    session.flush()


def list_events(
    session: Session, account: Account, *, page: int, per_page: int = 20
) -> tuple[list[AccountEvent], bool]:
    """One page (1-based) of the account's history, newest first, and whether more follow."""
    page = max(page, 1)
    rows = list(
        session.scalars(
            select(AccountEvent)
            .where(AccountEvent.account_id == account.id)
            .order_by(AccountEvent.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page + 1)
        )
    )
    return rows[:per_page], len(rows) > per_page


def count_accounts(session: Session) -> int:
    return session.scalar(select(func.count(Account.id))) or 0


def create_staff_account(session: Session, email: str, password: str, role: StaffRole) -> Account:
    """Create (or promote) a verified staff account; used by the operator CLI."""
    normalised = normalise_email(email)
    account = session.scalars(select(Account).where(Account.email == normalised)).one_or_none()
    if account is None:
        _check_password(password, normalised)
        account = Account(
            email=normalised,
            password_hash=passwords.hash_password(password),
            password_changed_at=utcnow(),
            email_verified_at=utcnow(),
        )
        session.add(account)
        session.flush()
    account.staff_role = role.value
    session.flush()
    record_event(session, account, EventKind.STAFF_ROLE_GRANTED, role=role.value)
    return account
