"""Giving and withdrawing consent: the one path every change takes (page, email link,
GPC signal, expiry, CLI, later the API and the privacy office).

Each change takes its lock first (``lookups._lock``: the ledger head inline, the
consumer's account row with a worker sequencer), then reads the consumer's current
state, so two identical requests racing each other record one event, never two. The
state, the signed receipt and the event (or its intake row) are written in the same
transaction (``recording``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.accounts.tokens import hash_secret, new_secret
from vrm_portal.brands.models import Brand, BrandRelationship
from vrm_portal.brands.service import relationship_with
from vrm_portal.consent import ledger
from vrm_portal.consent.errors import ConfirmationInvalid, ConsentVersionOutdated
from vrm_portal.consent.lookups import (
    _inline_head,
    _lock,
    _standing,
    _state,
    keep_version,
)
from vrm_portal.consent.lookups import find_choice as find_choice
from vrm_portal.consent.lookups import find_purpose as find_purpose
from vrm_portal.consent.lookups import version_of as version_of
from vrm_portal.consent.models import (
    Action,
    CollectionMethod,
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    PendingConfirmation,
    Purpose,
    PurposeCategory,
    PurposeVersion,
)
from vrm_portal.consent.recording import Change as Change
from vrm_portal.consent.recording import IssuedReceipt as IssuedReceipt
from vrm_portal.consent.recording import Notary as Notary
from vrm_portal.consent.recording import Recording, record_all

CONFIRMATION_TTL = timedelta(hours=48)


class Outcome(enum.Enum):
    RECORDED = "recorded"
    #: An email purpose: recorded once the link in the confirmation email is followed.
    CONFIRMATION_SENT = "confirmation-sent"
    #: A pending email confirmation was cancelled; nothing had been granted.
    PENDING_CANCELLED = "pending-cancelled"
    #: Already in the requested state (double submit): nothing recorded.
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    #: The secret for the confirmation link, when ``CONFIRMATION_SENT``.
    confirmation_token: str | None = None
    receipt: IssuedReceipt | None = None


def is_active(state: ConsentState | None, purpose: Purpose, now: datetime) -> bool:
    """Granted, to the current text, and not past its expiry: what may be acted upon."""
    return (
        state is not None
        and state.status == ConsentStatus.GRANTED
        and state.version == purpose.current_version
        and state.expires_at is not None
        and state.expires_at > now
    )


def grant(
    session: Session,
    notary: Notary,
    account: Account,
    purpose: Purpose,
    *,
    shown_version: int,
    change: Change,
    confirmation_ttl: timedelta = CONFIRMATION_TTL,
) -> Result:
    """Give consent to the text version the consumer was shown.

    Refused with ``ConsentVersionOutdated`` when that is no longer the current text. For
    email purposes a first grant waits for the confirmation link (double opt-in).
    """
    head = _inline_head(session)
    if shown_version != purpose.current_version:
        raise ConsentVersionOutdated(shown_version, purpose.current_version)
    standing = _standing(session, account, purpose, lock=head is None)
    state = standing.state
    if is_active(state, purpose, change.now):
        return Result(Outcome.UNCHANGED)
    renewing = state is not None and state.status == ConsentStatus.GRANTED
    if purpose.needs_double_opt_in and not renewing and change.method == CollectionMethod.PORTAL:
        return _await_confirmation(session, account, purpose, state, change, confirmation_ttl)
    receipt = _record(
        session, notary, head, account, purpose, Action.GRANTED, change, state, standing.pairwise_id
    )
    return Result(Outcome.RECORDED, receipt=receipt)


def withdraw(
    session: Session, notary: Notary, account: Account, purpose: Purpose, *, change: Change
) -> Result:
    """Withdraw consent (whatever text version it was given to): one click, like giving."""
    head = _inline_head(session)
    standing = _standing(session, account, purpose, lock=head is None)
    state = standing.state
    if state is None:
        return Result(Outcome.UNCHANGED)
    if state.status == ConsentStatus.PENDING:
        _close_confirmations(session, account, purpose, change.now)
        _restore_before_pending(session, state, change.now)
        return Result(Outcome.PENDING_CANCELLED)
    if state.status != ConsentStatus.GRANTED:
        return Result(Outcome.UNCHANGED)
    receipt = _record(
        session,
        notary,
        head,
        account,
        purpose,
        Action.WITHDRAWN,
        change,
        state,
        standing.pairwise_id,
    )
    return Result(Outcome.RECORDED, receipt=receipt)


#: What "all marketing" means on My consents: offers by email, SMS and post, and offers
#: chosen from the consumer's interests and plans (profiling for direct marketing, GDPR
#: art. 21(2)). Partner sharing and analytics are not marketing by the brand itself.
MARKETING_CATEGORIES = (
    PurposeCategory.EMAIL_MARKETING,
    PurposeCategory.SMS_MARKETING,
    PurposeCategory.POSTAL_MARKETING,
    PurposeCategory.PERSONALISATION,
)


@dataclass(frozen=True)
class BulkWithdrawal:
    """What a withdrawal of several consents did."""

    #: The consents withdrawn, one ledger event (and receipt, and feed entry) each.
    withdrawn: list[Purpose]
    #: Email consents still waiting for their confirmation, cancelled (nothing recorded).
    cancelled: list[Purpose]


def withdraw_brand(
    session: Session, notary: Notary, account: Account, brand: Brand, *, change: Change
) -> BulkWithdrawal:
    """Withdraw every consent the consumer gave ``brand``, in the caller's transaction."""
    return _withdraw_where(session, notary, account, change, Purpose.brand_id == brand.id)


def withdraw_marketing(
    session: Session, notary: Notary, account: Account, *, change: Change
) -> BulkWithdrawal:
    """Withdraw every marketing consent (``MARKETING_CATEGORIES``) of every brand, in the
    caller's transaction."""
    categories = [category.value for category in MARKETING_CATEGORIES]
    return _withdraw_where(session, notary, account, change, Purpose.category.in_(categories))


def _withdraw_where(
    session: Session,
    notary: Notary,
    account: Account,
    change: Change,
    condition: ColumnElement[bool],
) -> BulkWithdrawal:
    """Withdraw each purpose matching ``condition`` that the consumer gave (or cancel its
    pending confirmation): one event, receipt and feed entry per consent, all in one
    transaction and in a fixed number of statements whatever their count (the ledger's
    ``append_all``, one feed batch per brand, the receipts in one INSERT). The ledger head
    is locked first, then the brands are taken in ascending id (the project's lock order).
    """
    head = _lock(session, [account.id])
    rows = session.execute(
        select(ConsentState, Purpose, PurposeVersion, BrandRelationship.pairwise_id)
        .join(Purpose, Purpose.id == ConsentState.purpose_id)
        .join(
            PurposeVersion,
            and_(
                PurposeVersion.purpose_id == Purpose.id,
                PurposeVersion.version == ConsentState.version,
            ),
        )
        .outerjoin(
            BrandRelationship,
            and_(
                BrandRelationship.account_id == ConsentState.account_id,
                BrandRelationship.brand_id == Purpose.brand_id,
            ),
        )
        .where(
            condition,
            ConsentState.account_id == account.id,
            ConsentState.status.in_([ConsentStatus.GRANTED.value, ConsentStatus.PENDING.value]),
        )
        .order_by(Purpose.brand_id, Purpose.id)
        .execution_options(populate_existing=True)
    ).all()
    withdrawn: list[tuple[Purpose, ConsentState, str | None]] = []
    cancelled = []
    for state, purpose, version, pairwise_id in rows:
        keep_version(session, version)
        if state.status == ConsentStatus.PENDING:
            _close_confirmations(session, account, purpose, change.now)
            _restore_before_pending(session, state, change.now)
            cancelled.append(purpose)
        else:
            withdrawn.append((purpose, state, pairwise_id))
    _record_withdrawals(session, notary, head, account, change, withdrawn)
    return BulkWithdrawal(withdrawn=[p for p, _s, _id in withdrawn], cancelled=cancelled)


def confirm(
    session: Session, notary: Notary, token: str, account: Account, *, change: Change
) -> IssuedReceipt:
    """Follow the confirmation link of an email purpose: the grant is recorded now.

    Only the account that asked may confirm: another account's link is "invalid".
    """
    head = _lock(session, [account.id])
    pending = session.scalar(
        select(PendingConfirmation).where(PendingConfirmation.token_hash == hash_secret(token))
    )
    if pending is None or pending.account_id != account.id:
        raise ConfirmationInvalid("invalid")
    if pending.closed_at is not None:
        raise ConfirmationInvalid("used")
    if pending.expires_at <= change.now:
        raise ConfirmationInvalid("expired")
    purpose = pending.purpose
    if pending.version != purpose.current_version:
        raise ConfirmationInvalid("outdated")
    pending.closed_at = change.now
    confirmed = Change(
        CollectionMethod.EMAIL_CONFIRMATION, pending.language, change.now, change.actor
    )
    state = _state(session, account, purpose)
    return _record(session, notary, head, account, purpose, Action.GRANTED, confirmed, state)


def honour_gpc(
    session: Session, notary: Notary, account: Account, *, change: Change
) -> list[Purpose]:
    """Withdraw every sale/sharing purpose granted before the Global Privacy Control signal."""
    candidates = session.scalars(
        select(ConsentState)
        .join(Purpose, Purpose.id == ConsentState.purpose_id)
        .where(
            ConsentState.account_id == account.id,
            ConsentState.status == ConsentStatus.GRANTED,
            ConsentState.granted_despite_gpc.is_(False),
            Purpose.shares_with_third_parties.is_(True),
        )
        # Brand rows are locked in ascending id, the project's lock order (see CONTRIBUTING).
        .order_by(Purpose.brand_id, ConsentState.id)
    ).all()
    if not candidates:
        return []
    head = _lock(session, [account.id])
    withdrawn = []
    for state in candidates:
        fresh = _state(session, account, state.purpose)
        if fresh is None or fresh.status != ConsentStatus.GRANTED or fresh.granted_despite_gpc:
            continue
        _record(session, notary, head, account, state.purpose, Action.WITHDRAWN, change, fresh)
        withdrawn.append(state.purpose)
    return withdrawn


def expire_due(session: Session, notary: Notary, *, now: datetime, limit: int = 1000) -> int:
    """Record ``expired`` for grants past their validity; returns how many (cron-friendly)."""
    head = _inline_head(session)
    due_ids = (
        select(ConsentState.id)
        .where(ConsentState.status == ConsentStatus.GRANTED, ConsentState.expires_at <= now)
        .order_by(ConsentState.id)
        .limit(limit)
        .scalar_subquery()
    )
    if head is None:
        # With a worker sequencer: the consumers' rows, then their states read again.
        _lock(
            session,
            list(
                session.scalars(select(ConsentState.account_id).where(ConsentState.id.in_(due_ids)))
            ),
        )
    due = session.scalars(
        select(ConsentState)
        .join(Purpose, Purpose.id == ConsentState.purpose_id)
        .where(
            ConsentState.id.in_(due_ids),
            ConsentState.status == ConsentStatus.GRANTED,
            ConsentState.expires_at <= now,
        )
        .order_by(Purpose.brand_id, ConsentState.id)
        .execution_options(populate_existing=True)
    ).all()
    for state in due:
        account = session.get(Account, state.account_id)
        assert account is not None
        change = Change(CollectionMethod.EXPIRY, account.locale or "en", now, actor="system")
        _record(session, notary, head, account, state.purpose, Action.EXPIRED, change, state)
    return len(due)


def _await_confirmation(
    session: Session,
    account: Account,
    purpose: Purpose,
    state: ConsentState | None,
    change: Change,
    ttl: timedelta,
) -> Result:
    _close_confirmations(session, account, purpose, change.now)
    token = new_secret()
    session.add(
        PendingConfirmation(
            account_id=account.id,
            purpose_id=purpose.id,
            version=purpose.current_version,
            token_hash=hash_secret(token),
            language=change.language,
            created_at=change.now,
            expires_at=change.now + ttl,
        )
    )
    version = version_of(session, purpose)
    if state is None:
        state = ConsentState(account_id=account.id, purpose_id=purpose.id)
        session.add(state)
    state.status = ConsentStatus.PENDING
    state.version = version.version
    state.content_hash = version.content_hash
    state.method = change.method
    state.updated_at = change.now
    session.flush()
    return Result(Outcome.CONFIRMATION_SENT, confirmation_token=token)


def _restore_before_pending(session: Session, state: ConsentState, now: datetime) -> None:
    """Cancelling a pending grant puts back what the ledger last said (or nothing)."""
    if state.last_event_seq is None:
        session.delete(state)
        session.flush()
        return
    last = session.get(ConsentEvent, state.last_event_seq)
    action = last.action if last is not None else Action.WITHDRAWN
    state.status = ConsentStatus.EXPIRED if action == Action.EXPIRED else ConsentStatus.WITHDRAWN
    state.updated_at = now
    session.flush()


def _close_confirmations(
    session: Session, account: Account, purpose: Purpose, now: datetime
) -> None:
    for pending in session.scalars(
        select(PendingConfirmation).where(
            PendingConfirmation.account_id == account.id,
            PendingConfirmation.purpose_id == purpose.id,
            PendingConfirmation.closed_at.is_(None),
        )
    ):
        pending.closed_at = now


def _record(
    session: Session,
    notary: Notary,
    head: ledger.Head | None,
    account: Account,
    purpose: Purpose,
    action: Action,
    change: Change,
    state: ConsentState | None,
    pairwise_id: str | None = None,
) -> IssuedReceipt:
    """Update the state, sign the receipt and hand the event to the sequencer: one
    transaction (see ``recording.record_all``).

    ``state`` is the consumer's current state for ``purpose``, read under the change's
    lock (None when they never answered); ``pairwise_id`` their id towards its brand
    when already read with it (the relationship is looked up, or created, otherwise).
    """
    if action == Action.GRANTED:
        version = version_of(session, purpose)
    else:
        version = version_of(session, purpose, state.version if state else None)
    principal = pairwise_id or relationship_with(session, account.id, purpose.brand).pairwise_id
    (receipt,) = record_all(
        session,
        notary,
        head,
        account,
        action,
        change,
        [Recording(purpose, version, state, principal)],
    )
    return receipt


def _record_withdrawals(
    session: Session,
    notary: Notary,
    head: ledger.Head | None,
    account: Account,
    change: Change,
    withdrawals: list[tuple[Purpose, ConsentState, str | None]],
) -> None:
    """``_record`` of ``Action.WITHDRAWN`` for each (purpose, state, pairwise id), in
    order, batched: one INSERT of receipts and one of intake rows for them all."""
    if not withdrawals:
        return
    recordings = [
        Recording(
            purpose,
            version_of(session, purpose, state.version),
            state,
            pairwise_id or relationship_with(session, account.id, purpose.brand).pairwise_id,
        )
        for purpose, state, pairwise_id in withdrawals
    ]
    record_all(session, notary, head, account, Action.WITHDRAWN, change, recordings)


def states_of(
    session: Session, account: Account, purposes: Iterable[Purpose]
) -> dict[int, ConsentState]:
    ids = [p.id for p in purposes]
    if not ids:
        return {}
    rows = session.scalars(
        select(ConsentState).where(
            ConsentState.account_id == account.id, ConsentState.purpose_id.in_(ids)
        )
    )
    return {row.purpose_id: row for row in rows}
