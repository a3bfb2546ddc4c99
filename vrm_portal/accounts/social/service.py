"""Social sign-in services: who an identity is, creating and linking accounts safely.

Accounts are keyed on (provider, subject). An address alone never joins an identity to
an account: a first sign-in creates an account only from an address the provider
vouches for, and when that address already has an account, its owner must prove it
(password, or an emailed link) before the identity is linked.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vrm_portal.accounts import service as accounts
from vrm_portal.accounts.auth_sessions import revoke_other_sessions
from vrm_portal.accounts.errors import InvalidEmail
from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import Account, EventKind
from vrm_portal.accounts.social.client import ProviderIdentity
from vrm_portal.accounts.social.errors import (
    IdentityLinkedElsewhere,
    IdentityNotFound,
    InvalidProviderEmail,
    LastSignInMethod,
    PendingLinkRejected,
    UnverifiedEmail,
)
from vrm_portal.accounts.social.models import LinkedIdentity, PendingIdentityLink
from vrm_portal.accounts.tokens import hash_secret, new_secret
from vrm_portal.clock import utcnow


@dataclass(frozen=True)
class SocialSignIn:
    """Outcome of a provider sign-in: an account to sign in, or ownership to prove."""

    account: Account | None
    created: bool = False
    pending: PendingIdentityLink | None = None


#: Unicode categories no address may hold, wherever they are: control characters (CR, LF,
#: tab, NUL), format characters (zero-width space and joiners, soft hyphen, direction
#: overrides), line and paragraph separators, private-use and unassigned code points.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})


def provider_email(raw: str) -> str:
    """A provider's address under the sign-up form's rules, in the same canonical form
    (``accounts.normalise_email``: email-validator, NFC, lower case).

    Stricter on one point: a line break or an invisible character anywhere, even at the
    ends where the form would strip it, is refused (``InvalidProviderEmail``): a provider
    that sends one is not giving a plain address, and the text around it (a header
    injection, a look-alike of someone else's address) must not reach an account.
    """
    if any(unicodedata.category(char) in HIDDEN_CATEGORIES for char in raw):
        raise InvalidProviderEmail("hidden_characters")
    try:
        return accounts.normalise_email(raw)
    except InvalidEmail as exc:
        if exc.reason == "too_long":
            raise InvalidProviderEmail("too_long") from exc
        _local, at, domain = raw.strip().rpartition("@")
        if at and _local and domain and ("." not in domain or domain.endswith(".")):
            raise InvalidProviderEmail("incomplete_domain") from exc
        raise InvalidProviderEmail("invalid") from exc


def displayable(text: str) -> str:
    """A provider's value (a subject, a name) fit to show on a page or in an email: line
    breaks and invisible characters, which could forge lines or hide text, become U+FFFD."""
    return "".join(
        "\ufffd" if unicodedata.category(char) in HIDDEN_CATEGORIES else char for char in text
    )


def _checked(seen: ProviderIdentity) -> ProviderIdentity:
    """``seen`` with its address in canonical form; ``InvalidProviderEmail`` if it fails."""
    if seen.email is None:
        return seen
    return replace(seen, email=provider_email(seen.email))


def _readable(seen: ProviderIdentity) -> ProviderIdentity:
    """``seen`` with its address in canonical form, or with none if it fails the rules."""
    try:
        return _checked(seen)
    except InvalidProviderEmail:
        return replace(seen, email=None)


def find_linked_identity(session: Session, provider: str, subject: str) -> LinkedIdentity | None:
    return session.scalars(
        select(LinkedIdentity).where(
            LinkedIdentity.provider == provider, LinkedIdentity.subject == subject
        )
    ).one_or_none()


def list_linked_identities(session: Session, account: Account) -> list[LinkedIdentity]:
    return list(
        session.scalars(
            select(LinkedIdentity)
            .where(LinkedIdentity.account_id == account.id)
            .order_by(LinkedIdentity.provider, LinkedIdentity.id)
        )
    )


def _touch(identity: LinkedIdentity, seen: ProviderIdentity) -> None:
    identity.last_used_at = utcnow()
    if seen.email:
        identity.email_seen = seen.email


def sign_in_with_identity(
    session: Session,
    seen: ProviderIdentity,
    *,
    pending_ttl: timedelta,
    client: ClientInfo | None = None,
) -> SocialSignIn:
    """Resolve a provider identity to an account.

    A linked identity signs in to its account, whatever address the provider now gives
    (one that fails the sign-up form's rules is not kept). Otherwise the provider must
    vouch for the address (``UnverifiedEmail``) and it must pass those rules
    (``InvalidProviderEmail``); a new address creates an account without a password; a
    known one starts a pending link.
    """
    linked = find_linked_identity(session, seen.provider, seen.subject)
    if linked is not None:
        _touch(linked, _readable(seen))
        record_event(
            session, linked.account, EventKind.SOCIAL_SIGN_IN, client, provider=seen.provider
        )
        return SocialSignIn(linked.account)
    if not seen.email or not seen.email_verified:
        raise UnverifiedEmail()
    seen = _checked(seen)
    assert seen.email is not None
    existing = accounts.find_account_by_email(session, seen.email)
    if existing is None:
        account = Account(email=seen.email, email_verified_at=utcnow())
        session.add(account)
        session.flush()
        record_event(session, account, EventKind.REGISTERED, client, provider=seen.provider)
        link_identity(session, account, seen, client=client)
        record_event(session, account, EventKind.SOCIAL_SIGN_IN, client, provider=seen.provider)
        return SocialSignIn(account, created=True)
    pending = PendingIdentityLink(
        account_id=existing.id,
        provider=seen.provider,
        subject=seen.subject,
        email=seen.email,
        detail={"name": seen.name} if seen.name else {},
        expires_at=utcnow() + pending_ttl,
    )
    session.add(pending)
    session.flush()
    record_event(
        session, existing, EventKind.IDENTITY_LINK_REQUESTED, client, provider=seen.provider
    )
    return SocialSignIn(None, pending=pending)


@dataclass(frozen=True)
class Link:
    """An identity linked to an account: ``new`` when this call made the link (the owner is
    told), false when it was already there."""

    account: Account
    identity: LinkedIdentity
    new: bool


def link_identity(
    session: Session, account: Account, seen: ProviderIdentity, *, client: ClientInfo | None = None
) -> Link:
    """Link a provider identity to ``account`` (idempotent for the same account).

    ``IdentityLinkedElsewhere`` when another account holds it: one identity, one account.
    ``InvalidProviderEmail`` when the provider gave an address that fails the sign-up
    form's rules (none at all is fine: the address is only shown).
    """
    seen = _checked(seen)
    existing = find_linked_identity(session, seen.provider, seen.subject)
    if existing is not None:
        if existing.account_id != account.id:
            raise IdentityLinkedElsewhere()
        _touch(existing, seen)
        return Link(account, existing, new=False)
    identity = LinkedIdentity(
        account_id=account.id,
        provider=seen.provider,
        subject=seen.subject,
        email_seen=seen.email,
        last_used_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(identity)
    except IntegrityError as exc:  # linked meanwhile by a concurrent request
        raise IdentityLinkedElsewhere() from exc
    record_event(
        session,
        account,
        EventKind.IDENTITY_LINKED,
        client,
        provider=seen.provider,
        email=seen.email,
    )
    return Link(account, identity, new=True)


def unlink_identity(
    session: Session, account: Account, identity_id: int, *, client: ClientInfo | None = None
) -> LinkedIdentity:
    """Remove one of the account's linked identities, unless it is its only way in."""
    identity = session.get(LinkedIdentity, identity_id) if 0 < identity_id < 2**31 else None
    if identity is None or identity.account_id != account.id:
        raise IdentityNotFound()
    others = session.scalar(
        select(func.count(LinkedIdentity.id)).where(
            LinkedIdentity.account_id == account.id, LinkedIdentity.id != identity.id
        )
    )
    if account.password_hash is None and not others:
        raise LastSignInMethod()
    session.delete(identity)
    session.flush()
    record_event(session, account, EventKind.IDENTITY_UNLINKED, client, provider=identity.provider)
    return identity


def get_pending_link(session: Session, pending_id: int) -> PendingIdentityLink:
    """The pending link this browser started, while it can still be confirmed."""
    pending = session.get(PendingIdentityLink, pending_id) if 0 < pending_id < 2**31 else None
    return _usable(pending)


def _usable(pending: PendingIdentityLink | None) -> PendingIdentityLink:
    if pending is None:
        raise PendingLinkRejected("unknown")
    if pending.used_at is not None:
        raise PendingLinkRejected("used")
    if pending.expires_at <= utcnow():
        raise PendingLinkRejected("expired")
    return pending


def issue_pending_link_secret(session: Session, pending: PendingIdentityLink) -> str:
    """A new secret for the emailed link; an earlier one stops working."""
    secret = new_secret()
    pending.token_hash = hash_secret(secret)
    session.flush()
    return secret


def peek_pending_link_by_secret(session: Session, secret: str) -> PendingIdentityLink:
    if not secret or len(secret) > 128:
        raise PendingLinkRejected("unknown")
    pending = session.scalars(
        select(PendingIdentityLink).where(PendingIdentityLink.token_hash == hash_secret(secret))
    ).one_or_none()
    return _usable(pending)


def _complete(session: Session, pending: PendingIdentityLink, client: ClientInfo | None) -> Link:
    pending.used_at = utcnow()
    seen = ProviderIdentity(
        provider=pending.provider,
        subject=pending.subject,
        email=pending.email,
        email_verified=True,
        name=str(pending.detail.get("name") or ""),
    )
    return link_identity(session, pending.account, seen, client=client)


def confirm_pending_link_with_password(
    session: Session, pending_id: int, password: str, *, client: ClientInfo | None = None
) -> Link:
    """Link after the account's owner signed in with its password in this browser.

    Raises what ``authenticate`` raises (``InvalidCredentials``, ``EmailNotVerified``).
    """
    pending = get_pending_link(session, pending_id)
    account = accounts.authenticate(session, pending.account.email, password, client=client)
    if account.id != pending.account_id:
        raise PendingLinkRejected("unknown")
    return _complete(session, pending, client)


def confirm_pending_link_with_email(
    session: Session, secret: str, *, client: ClientInfo | None = None
) -> Link:
    """Link after the emailed link was followed: whoever reads the mailbox owns it.

    If the account's address had never been confirmed, a password set by whoever created
    it proves nothing (it could be someone who registered another person's address
    first): it is dropped and the account's sessions end.
    """
    pending = peek_pending_link_by_secret(session, secret)
    account = pending.account
    if account.email != pending.email:
        raise PendingLinkRejected("unknown")
    if account.email_verified_at is None:
        account.email_verified_at = utcnow()
        account.password_hash = None
        revoke_other_sessions(session, account, keep=None, reason="unverified_owner")
        record_event(session, account, EventKind.EMAIL_VERIFIED, client)
    return _complete(session, pending, client)


def can_unlink(account: Account, identities: list[LinkedIdentity]) -> bool:
    """Whether removing one identity still leaves the account a way to sign in."""
    return account.password_hash is not None or len(identities) > 1
