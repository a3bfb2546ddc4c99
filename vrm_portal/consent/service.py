"""Giving and withdrawing consent: the one path every change takes (page, email link,
GPC signal, expiry, CLI, later the API and the privacy office).

Each change locks the ledger head first, then reads the consumer's current state, so two
identical requests racing each other record one event, never two. The ledger event, the
materialised state and the signed receipt are written in the same transaction.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, event, insert, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.accounts.tokens import hash_secret, new_secret
from vrm_portal.brands.models import Brand, BrandRelationship
from vrm_portal.brands.service import relationship_with
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, sequencer
from vrm_portal.consent.errors import ConfirmationInvalid, ConsentVersionOutdated, UnknownPurpose
from vrm_portal.consent.models import (
    Action,
    CollectionMethod,
    ConsentEvent,
    ConsentReceipt,
    ConsentState,
    ConsentStatus,
    EventIntake,
    PendingConfirmation,
    Purpose,
    PurposeCategory,
    PurposeVersion,
)
from vrm_portal.consent.receipts import LedgerPromise, ReceiptFacts, SigningKey, build_receipt

CONFIRMATION_TTL = timedelta(hours=48)
_RECEIPTS = cast(Table, ConsentReceipt.__table__)
_INTAKE = cast(Table, EventIntake.__table__)


@dataclass(frozen=True)
class Notary:
    """Signs receipts: the portal's key and its public URL (the receipts' issuer)."""

    key: SigningKey
    issuer: str


@dataclass(frozen=True)
class Change:
    """How a change was made: by which path, on whose behalf, in which language, when."""

    method: CollectionMethod
    language: str
    now: datetime
    actor: str = "subject"
    #: The request carried ``Sec-GPC: 1``: an explicit grant then overrides the signal.
    gpc_signal: bool = False


@dataclass(frozen=True)
class IssuedReceipt:
    """The signed receipt of a change just recorded (stored in ``consent_receipts``)."""

    receipt_id: str
    event_id: str
    #: The event's place in the ledger, when integrated in the change's transaction.
    event_seq: int | None
    account_id: int
    jws: str


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


def find_purpose(session: Session, brand_slug: str, purpose_key: str) -> Purpose:
    purpose = session.scalar(
        select(Purpose)
        .join(Brand, Brand.id == Purpose.brand_id)
        .where(Brand.slug == brand_slug, Purpose.key == purpose_key, Purpose.current_version > 0)
    )
    if purpose is None:
        raise UnknownPurpose(f"{brand_slug}/{purpose_key}")
    return purpose


def find_choice(
    session: Session, brand_slug: str, purpose_key: str
) -> tuple[Brand, Purpose | None] | None:
    """The brand ``brand_slug`` and its published purpose ``purpose_key`` (None when it has
    none), in one statement with the purpose's current text (kept, see ``version_of``).
    None when there is no such brand. The caller keeps the brand referenced: the session's
    identity map then serves ``purpose.brand`` without a query."""
    row = session.execute(
        select(Brand, Purpose, PurposeVersion)
        .outerjoin(
            Purpose,
            and_(
                Purpose.brand_id == Brand.id,
                Purpose.key == purpose_key,
                Purpose.current_version > 0,
            ),
        )
        .outerjoin(
            PurposeVersion,
            and_(
                PurposeVersion.purpose_id == Purpose.id,
                PurposeVersion.version == Purpose.current_version,
            ),
        )
        .where(Brand.slug == brand_slug)
    ).first()
    if row is None:
        return None
    brand, purpose, version = row
    if purpose is not None and version is not None:
        _keep_version(session, version)
    return brand, purpose


_VERSIONS = "vrm_purpose_versions"


def _keep_version(session: Session, version: PurposeVersion) -> None:
    cache: dict[tuple[int, int], PurposeVersion] = session.info.setdefault(_VERSIONS, {})
    cache[(version.purpose_id, version.version)] = version


@event.listens_for(Session, "after_soft_rollback")
def _forget_versions(session: Session, _transaction: object) -> None:
    """A rollback may undo a version this session loaded or published: forget them all."""
    session.info.pop(_VERSIONS, None)


def version_of(session: Session, purpose: Purpose, number: int | None = None) -> PurposeVersion:
    """A published text of ``purpose`` (the current one by default).

    Published texts never change, so the session keeps those it has loaded.
    """
    key = (purpose.id, number or purpose.current_version)
    cache: dict[tuple[int, int], PurposeVersion] = session.info.setdefault(_VERSIONS, {})
    found = cache.get(key)
    if found is None:
        found = session.scalar(
            select(PurposeVersion).where(
                PurposeVersion.purpose_id == key[0], PurposeVersion.version == key[1]
            )
        )
        if found is None:
            raise UnknownPurpose(f"{purpose.key} v{key[1]}")
        cache[key] = found
    return found


def _state(session: Session, account: Account, purpose: Purpose) -> ConsentState | None:
    return session.scalar(
        select(ConsentState)
        .where(ConsentState.account_id == account.id, ConsentState.purpose_id == purpose.id)
        .execution_options(populate_existing=True)
    )


@dataclass(frozen=True)
class _Standing:
    """What a change must know of the consumer, read after the ledger head is locked: their
    current state for the purpose and their pairwise id towards its brand (None if none)."""

    state: ConsentState | None
    pairwise_id: str | None


def _lock(session: Session, account_ids: list[int]) -> ledger.Head | None:
    """Take a change's lock, so that two identical requests racing each other record one
    event, never two: inline (``sequencer.INLINE``), the ledger head, returned; with a
    worker sequencer, the consumers' account rows (ascending id), and None."""
    if sequencer.mode() == sequencer.INLINE:
        return ledger.lock_head(session)
    # FOR NO KEY UPDATE: the foreign key checks of the sequencer's writes take KEY SHARE
    # locks on account rows, which this must not block (that would be a deadlock).
    session.execute(
        select(Account.id)
        .where(Account.id.in_(sorted(set(account_ids))))
        .order_by(Account.id)
        .with_for_update(key_share=True)
    ).all()
    return None


def _inline_head(session: Session) -> ledger.Head | None:
    """The ledger head, locked, when the app integrates inline; None with a worker."""
    return ledger.lock_head(session) if sequencer.mode() == sequencer.INLINE else None


def _standing(
    session: Session, account: Account, purpose: Purpose, *, lock: bool = False
) -> _Standing:
    """The consumer's state and pairwise id, in one statement; with ``lock``, it also
    locks the account row (the change's lock when the sequencer is a worker)."""
    query = (
        select(ConsentState, BrandRelationship.pairwise_id)
        .select_from(Account)
        .outerjoin(
            ConsentState,
            and_(ConsentState.account_id == Account.id, ConsentState.purpose_id == purpose.id),
        )
        .outerjoin(
            BrandRelationship,
            and_(
                BrandRelationship.account_id == Account.id,
                BrandRelationship.brand_id == purpose.brand_id,
            ),
        )
        .where(Account.id == account.id)
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update(of=Account, key_share=True)  # see ``_lock``
    row = session.execute(query).one()
    return _Standing(row[0], row[1])


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
        _keep_version(session, version)
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


_STATUS_AFTER = {
    Action.GRANTED: ConsentStatus.GRANTED,
    Action.WITHDRAWN: ConsentStatus.WITHDRAWN,
    Action.EXPIRED: ConsentStatus.EXPIRED,
}


@dataclass(frozen=True)
class _Recording:
    """One change to record: the purpose, its text, the consumer's state and pairwise id."""

    purpose: Purpose
    version: PurposeVersion
    state: ConsentState | None
    principal: str


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
    transaction (see ``_record_all``).

    ``state`` is the consumer's current state for ``purpose``, read under the change's
    lock (None when they never answered); ``pairwise_id`` their id towards its brand
    when already read with it (the relationship is looked up, or created, otherwise).
    """
    if action == Action.GRANTED:
        version = version_of(session, purpose)
    else:
        version = version_of(session, purpose, state.version if state else None)
    principal = pairwise_id or relationship_with(session, account.id, purpose.brand).pairwise_id
    (receipt,) = _record_all(
        session,
        notary,
        head,
        account,
        action,
        change,
        [_Recording(purpose, version, state, principal)],
    )
    return receipt


def _record_all(
    session: Session,
    notary: Notary,
    head: ledger.Head | None,
    account: Account,
    action: Action,
    change: Change,
    recordings: list[_Recording],
) -> list[IssuedReceipt]:
    """Record ``action`` for each of ``recordings``, in order: the consumer's state is
    updated (seen at once by the brand API), the receipt signed and stored, and the event
    written to the sequencer's intake with what its feed entry will say, in one INSERT
    each whatever their number. ``head`` is the ledger head locked by this change when
    the app integrates inline (``sequencer.INLINE``): the events are then integrated in
    this transaction; otherwise the job engine's sequencer is nudged after the commit.
    """
    expires_at: datetime | None = None
    intake, receipt_rows, issued, states = [], [], [], []
    for recording in recordings:
        purpose, version = recording.purpose, recording.version
        if action == Action.GRANTED:
            expires_at = change.now + timedelta(days=purpose.validity_days)
        new_event = ledger.NewEvent(
            subject_key=account.subject_key,
            brand=purpose.brand.slug,
            purpose=purpose.key,
            purpose_version=version.version,
            text_hash=version.content_hash,
            action=action.value,
            method=change.method.value,
            actor=change.actor,
            language=change.language,
            occurred_at=change.now,
            expires_at=expires_at,
        )
        event_id = str(uuid.uuid4())
        content = new_event.content(event_id)
        state = recording.state
        if state is None:
            state = ConsentState(account_id=account.id, purpose_id=purpose.id)
            session.add(state)
        state.status = _STATUS_AFTER[action]
        state.version = version.version
        state.content_hash = version.content_hash
        state.granted_at = change.now if action == Action.GRANTED else None
        state.expires_at = expires_at
        state.method = change.method.value
        state.granted_despite_gpc = action == Action.GRANTED and change.gpc_signal
        state.updated_at = change.now
        if state.id is None and head is None:
            session.flush()  # the intake row names the state
        states.append(state)
        receipt_id = str(uuid.uuid4())
        facts = ReceiptFacts(
            issuer=notary.issuer,
            brand=purpose.brand,
            purpose=purpose,
            version=version,
            event=LedgerPromise(
                event_id, ledger.content_hash(content), change.now + sequencer.MAX_DELAY
            ),
            principal_id=recording.principal,
            method=change.method.value,
            action=action.value,
            language=change.language,
            occurred_at=change.now,
            expires_at=expires_at,
        )
        jws = notary.key.sign(build_receipt(facts, receipt_id))
        issued.append(IssuedReceipt(receipt_id, event_id, None, account.id, jws))
        receipt_rows.append(
            {
                "receipt_id": receipt_id,
                "event_seq": None,
                "account_id": account.id,
                "jws": jws,
                "created_at": change.now,
            }
        )
        intake.append(
            {
                "event_id": event_id,
                "content": ledger.canonical_json(content),
                "occurred_at": change.now,
                "receipt_id": receipt_id,
                "state_id": state.id,
                "brand_id": purpose.brand_id,
                "pairwise_id": recording.principal,
                "feed_data": {
                    "purpose": purpose.key,
                    "version": version.version,
                    "method": change.method.value,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
                "created_at": utcnow(),
            }
        )
    if head is None:
        session.execute(insert(_RECEIPTS), receipt_rows)
        session.execute(insert(_INTAKE), intake)
        sequencer.note_due(session)
        session.flush()
        return issued
    # Inline: the events are placed at once, without passing through the intake (the
    # states are written once, with their ``last_event_seq``, at the receipts' INSERT).
    with session.no_autoflush:
        placed = _place_inline(session, head, change, intake)
    for row, state, appended in zip(receipt_rows, states, placed, strict=True):
        row["event_seq"] = appended.seq
        state.last_event_seq = appended.seq
    session.execute(insert(_RECEIPTS), receipt_rows)
    session.flush()
    return [replace(r, event_seq=e.seq) for r, e in zip(issued, placed, strict=True)]


def _place_inline(
    session: Session, head: ledger.Head, change: Change, intake: list[dict[str, Any]]
) -> list[ledger.AppendedEvent]:
    return sequencer.place(
        session,
        head,
        [
            sequencer.Waiting(
                json.loads(row["content"]),
                change.now,
                row["brand_id"],
                row["pairwise_id"],
                row["feed_data"],
            )
            for row in intake
        ],
    )


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
        _Recording(
            purpose,
            version_of(session, purpose, state.version),
            state,
            pairwise_id or relationship_with(session, account.id, purpose.brand).pairwise_id,
        )
        for purpose, state, pairwise_id in withdrawals
    ]
    _record_all(session, notary, head, account, Action.WITHDRAWN, change, recordings)


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
