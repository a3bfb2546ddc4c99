"""Account services: registration, verification, sign-in, password and email changes, staff.

Plain functions over a SQLAlchemy session: no request, no templates. They flush, never
commit; the caller's transaction decides. Failures are the exceptions in ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vrm_portal.accounts import passwords
from vrm_portal.accounts.auth_sessions import revoke_other_sessions
from vrm_portal.accounts.email_tokens import (
    IssuedToken,
    issue_email_token,
    peek_email_token,
    use_email_token,
)
from vrm_portal.accounts.errors import (
    AccountDisabled,
    EmailNotVerified,
    InvalidCredentials,
    InvalidEmail,
    PasswordRejected,
    TokenRejected,
    WrongCurrentPassword,
)
from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import (
    Account,
    AuthSession,
    EmailToken,
    EventKind,
    StaffRole,
    TokenPurpose,
)
from vrm_portal.clock import utcnow

SUPPORTED_LOCALES = ("en", "fr")


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


def find_account_by_email(session: Session, email: str) -> Account | None:
    try:
        normalised = normalise_email(email)
    except InvalidEmail:
        return None
    return session.scalars(select(Account).where(Account.email == normalised)).one_or_none()


def _check_password(password: str, email: str | None) -> None:
    problem = passwords.policy_problem(password, email)
    if problem:
        raise PasswordRejected(problem)


@dataclass(frozen=True)
class PreparedRegistration:
    """A sign-up form's checked address and hashed password, before any database read."""

    email: str
    password_hash: str


def prepare_registration(email: str, password: str) -> PreparedRegistration:
    """Check the address and the password and hash it: the same work for every address,
    new or taken, so that the answer reveals nothing (``PasswordRejected`` on a weak one)."""
    normalised = normalise_email(email)
    _check_password(password, normalised)
    return PreparedRegistration(normalised, passwords.hash_password(password))


def complete_registration(
    session: Session,
    prepared: PreparedRegistration,
    *,
    locale: str | None = None,
    client: ClientInfo | None = None,
    verification_ttl: timedelta | None,
) -> Registration:
    """Create the unverified account, or report the one that already holds the address
    (the caller then tells that owner by email). Runs in the registration job, which
    passes no ``verification_ttl``: the verification email's own job issues the token."""
    existing = session.scalars(select(Account).where(Account.email == prepared.email)).one_or_none()
    if existing is not None:
        return Registration(existing, created=False, verification=None)
    account = Account(
        email=prepared.email,
        password_hash=prepared.password_hash,
        password_changed_at=utcnow(),
        locale=locale if locale in SUPPORTED_LOCALES else None,
    )
    session.add(account)
    session.flush()
    record_event(session, account, EventKind.REGISTERED, client)
    token = None
    if verification_ttl is not None:
        token = issue_email_token(session, account, TokenPurpose.VERIFY_EMAIL, verification_ttl)
    return Registration(account, created=True, verification=token)


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
    enumeration) and tell the existing owner by email instead. The sign-up page runs
    the two halves apart (``prepare_registration`` in the request, the rest in a job).
    """
    return complete_registration(
        session,
        prepare_registration(email, password),
        locale=locale,
        client=client,
        verification_ttl=verification_ttl,
    )


def verify_email(
    session: Session,
    secret: str,
    *,
    signed_in: Account | None = None,
    client: ClientInfo | None = None,
) -> Account:
    """Mark the account's address verified through the emailed link (single use)."""
    record = use_email_token(session, secret, TokenPurpose.VERIFY_EMAIL, signed_in)
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
    if account.disabled_at is not None:
        raise AccountDisabled()
    if account.password_hash and passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
    if not account.is_verified:
        raise EmailNotVerified(account)
    return account


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
    record = use_email_token(session, secret, TokenPurpose.RESET_PASSWORD, None)
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
    normalised = check_email_change(session, account, current_password, new_email, client=client)
    return issue_email_change(session, account, normalised, ttl=ttl)


def check_email_change(
    session: Session,
    account: Account,
    current_password: str,
    new_email: str,
    *,
    client: ClientInfo | None = None,
) -> str:
    """The request's half of an email change: re-authenticate and record the request.
    Returns the normalised new address. Whether it is taken is decided in a job."""
    reauthenticate(session, account, current_password)
    normalised = normalise_email(new_email)
    if normalised == account.email:
        raise InvalidEmail("same_as_current")
    record_event(session, account, EventKind.EMAIL_CHANGE_REQUESTED, client)
    return normalised


def issue_email_change(
    session: Session, account: Account, new_email: str, *, ttl: timedelta
) -> IssuedToken | None:
    """A confirmation token for ``new_email``, or None when another account holds it."""
    taken = session.scalars(select(Account.id).where(Account.email == new_email)).first()
    if taken is not None:
        return None
    return issue_email_token(session, account, TokenPurpose.CHANGE_EMAIL, ttl, email=new_email)


@dataclass(frozen=True)
class EmailChange:
    """Outcome of a confirmed email change."""

    account: Account
    old_email: str
    #: Sessions signed out by the change (the caller's own included unless kept).
    sessions_ended: int


def confirm_email_change(
    session: Session,
    secret: str,
    *,
    signed_in: Account,
    keep: AuthSession | None,
    client: ClientInfo | None = None,
) -> EmailChange:
    """Switch to the confirmed new address and sign out every session but ``keep``.

    Like a password change, it ends the other sessions: a browser signed in before the
    change (someone else's, maybe) must not stay in under the new address. Links still
    pending in the old mailbox (a password reset, say) lapse: whoever reads that mailbox
    must not keep a way into the account.
    """
    record = use_email_token(session, secret, TokenPurpose.CHANGE_EMAIL, signed_in)
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
    ended = revoke_other_sessions(session, account, keep=keep, reason="email_changed")
    session.flush()
    record_event(session, account, EventKind.EMAIL_CHANGED, client, other_sessions_ended=ended)
    return EmailChange(account, old_email, ended)


def set_locale(session: Session, account: Account, locale: str) -> None:
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"unsupported locale {locale!r}")
    if account.locale != locale:
        account.locale = locale
        record_event(session, account, EventKind.LOCALE_CHANGED, locale=locale)
    session.flush()


def count_accounts(session: Session) -> int:
    return session.scalar(select(func.count(Account.id))) or 0


def create_staff_account(
    session: Session, email: str, password: str, role: StaffRole, *, brand_id: int | None = None
) -> Account:
    """Create (or promote) a verified staff account; used by the operator CLI.

    A ``brand-operator`` is bound to the brand ``brand_id`` (required for that role, refused
    for the others). A promoted account's sessions end: its next sign-in starts a new
    session, through the staff second factor.
    """
    if (role == StaffRole.BRAND_OPERATOR) != (brand_id is not None):
        raise ValueError("a brand operator needs a brand, and only a brand operator has one")
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
    if account.staff_role != role.value or account.staff_brand_id != brand_id:
        revoke_other_sessions(session, account, keep=None, reason="privilege_changed")
    account.staff_role = role.value
    account.staff_brand_id = brand_id
    session.flush()
    record_event(session, account, EventKind.STAFF_ROLE_GRANTED, role=role.value)
    return account
