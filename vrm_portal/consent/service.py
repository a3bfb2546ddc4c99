"""Giving and withdrawing consent: the one path every change takes (page, email link,
GPC signal, expiry, CLI, later the API and the privacy office).

Each change locks the ledger head first, then reads the consumer's current state, so two
identical requests racing each other record one event, never two. The ledger event, the
materialised state and the signed receipt are written in the same transaction.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, event, insert, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.accounts.tokens import hash_secret, new_secret
from vrm_portal.brands import feed
from vrm_portal.brands.models import Brand, BrandRelationship, ChangeKind
from vrm_portal.brands.service import relationship_with
from vrm_portal.consent import ledger
from vrm_portal.consent.errors import ConfirmationInvalid, ConsentVersionOutdated, UnknownPurpose
from vrm_portal.consent.models import (
    Action,
    CollectionMethod,
    ConsentEvent,
    ConsentReceipt,
    ConsentState,
    ConsentStatus,
    PendingConfirmation,
    Purpose,
    PurposeCategory,
    PurposeVersion,
)
from vrm_portal.consent.receipts import ReceiptFacts, SigningKey, build_receipt

CONFIRMATION_TTL = timedelta(hours=48)
_RECEIPTS = cast(Table, ConsentReceipt.__table__)
_FEED_KINDS = {
    Action.GRANTED: ChangeKind.CONSENT_GRANTED,
    Action.WITHDRAWN: ChangeKind.CONSENT_WITHDRAWN,
    Action.EXPIRED: ChangeKind.CONSENT_EXPIRED,
}


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
    event_seq: int
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


def _standing(session: Session, account: Account, purpose: Purpose) -> _Standing:
    """The consumer's state and pairwise id, in one statement."""
    row = session.execute(
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
    ).one()
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
    head = ledger.lock_head(session)
    if shown_version != purpose.current_version:
        raise ConsentVersionOutdated(shown_version, purpose.current_version)
    standing = _standing(session, account, purpose)
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
    head = ledger.lock_head(session)
    standing = _standing(session, account, purpose)
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
    head = ledger.lock_head(session)
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
    head = ledger.lock_head(session)
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
    head = ledger.lock_head(session)
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
    head = ledger.lock_head(session)
    due_ids = (
        select(ConsentState.id)
        .where(ConsentState.status == ConsentStatus.GRANTED, ConsentState.expires_at <= now)
        .order_by(ConsentState.id)
        .limit(limit)
        .scalar_subquery()
    )
    # The batch's brand rows are locked in ascending id, the project's lock order.
    due = session.scalars(
        select(ConsentState)
        .join(Purpose, Purpose.id == ConsentState.purpose_id)
        .where(ConsentState.id.in_(due_ids))
        .order_by(Purpose.brand_id, ConsentState.id)
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
    head: ledger.Head,
    account: Account,
    purpose: Purpose,
    action: Action,
    change: Change,
    state: ConsentState | None,
    pairwise_id: str | None = None,
) -> IssuedReceipt:
    """Append the event, update the state and sign the receipt: one transaction.

    ``state`` is the consumer's current state for ``purpose``, read after ``head`` was
    locked (None when they never answered); ``pairwise_id`` their id towards its brand
    when already read with it (the relationship is looked up, or created, otherwise).
    """
    brand = purpose.brand
    if action == Action.GRANTED:
        version = version_of(session, purpose)
        expires_at: datetime | None = change.now + timedelta(days=purpose.validity_days)
    else:
        version = version_of(session, purpose, state.version if state else None)
        expires_at = None
    principal = pairwise_id or relationship_with(session, account.id, brand).pairwise_id
    event = ledger.append(
        session,
        ledger.NewEvent(
            subject_key=account.subject_key,
            brand=brand.slug,
            purpose=purpose.key,
            purpose_version=version.version,
            text_hash=version.content_hash,
            action=action.value,
            method=change.method.value,
            actor=change.actor,
            language=change.language,
            occurred_at=change.now,
            expires_at=expires_at,
        ),
        head,
    )
    if state is None:
        state = ConsentState(account_id=account.id, purpose_id=purpose.id)
        session.add(state)
    state.status = {
        Action.GRANTED: ConsentStatus.GRANTED,
        Action.WITHDRAWN: ConsentStatus.WITHDRAWN,
        Action.EXPIRED: ConsentStatus.EXPIRED,
    }[action]
    state.version = version.version
    state.content_hash = version.content_hash
    state.granted_at = change.now if action == Action.GRANTED else None
    state.expires_at = expires_at
    state.method = change.method.value
    state.granted_despite_gpc = action == Action.GRANTED and change.gpc_signal
    state.last_event_seq = event.seq
    state.updated_at = change.now
    feed.append_change(
        session,
        brand.id,
        _FEED_KINDS[action],
        principal,
        change.now,
        {
            "purpose": purpose.key,
            "version": version.version,
            "method": change.method.value,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    receipt_id = str(uuid.uuid4())
    facts = ReceiptFacts(
        issuer=notary.issuer,
        brand=brand,
        purpose=purpose,
        version=version,
        event=event,
        principal_id=principal,
        method=change.method.value,
        action=action.value,
        language=change.language,
        occurred_at=change.now,
        expires_at=expires_at,
    )
    receipt = IssuedReceipt(
        receipt_id=receipt_id,
        event_seq=event.seq,
        account_id=account.id,
        jws=notary.key.sign(build_receipt(facts, receipt_id)),
    )
    session.execute(
        insert(_RECEIPTS).values(
            receipt_id=receipt.receipt_id,
            event_seq=receipt.event_seq,
            account_id=receipt.account_id,
            jws=receipt.jws,
            created_at=change.now,
        )
    )
    session.flush()
    return receipt


def _record_withdrawals(
    session: Session,
    notary: Notary,
    head: ledger.Head,
    account: Account,
    change: Change,
    withdrawals: list[tuple[Purpose, ConsentState, str | None]],
) -> None:
    """``_record`` of ``Action.WITHDRAWN`` for each (purpose, state, pairwise id), in
    order, batched: what as many ``_record`` calls would write, in fewer statements."""
    if not withdrawals:
        return
    texts = [version_of(session, p, s.version) for p, s, _id in withdrawals]
    principals = [
        pairwise_id or relationship_with(session, account.id, purpose.brand).pairwise_id
        for purpose, _state, pairwise_id in withdrawals
    ]
    events = ledger.append_all(
        session,
        [
            ledger.NewEvent(
                subject_key=account.subject_key,
                brand=purpose.brand.slug,
                purpose=purpose.key,
                purpose_version=version.version,
                text_hash=version.content_hash,
                action=Action.WITHDRAWN.value,
                method=change.method.value,
                actor=change.actor,
                language=change.language,
                occurred_at=change.now,
            )
            for (purpose, _state, _id), version in zip(withdrawals, texts, strict=True)
        ],
        head,
    )
    receipts = []
    by_brand: dict[int, list[tuple[str, dict[str, object]]]] = {}
    for (purpose, state, _id), version, principal, appended in zip(
        withdrawals, texts, principals, events, strict=True
    ):
        state.status = ConsentStatus.WITHDRAWN
        state.version = version.version
        state.content_hash = version.content_hash
        state.granted_at = None
        state.expires_at = None
        state.method = change.method.value
        state.granted_despite_gpc = False
        state.last_event_seq = appended.seq
        state.updated_at = change.now
        by_brand.setdefault(purpose.brand_id, []).append(
            (
                principal,
                {
                    "purpose": purpose.key,
                    "version": version.version,
                    "method": change.method.value,
                    "expires_at": None,
                },
            )
        )
        receipt_id = str(uuid.uuid4())
        facts = ReceiptFacts(
            issuer=notary.issuer,
            brand=purpose.brand,
            purpose=purpose,
            version=version,
            event=appended,
            principal_id=principal,
            method=change.method.value,
            action=Action.WITHDRAWN.value,
            language=change.language,
            occurred_at=change.now,
            expires_at=None,
        )
        receipts.append(
            {
                "receipt_id": receipt_id,
                "event_seq": appended.seq,
                "account_id": account.id,
                "jws": notary.key.sign(build_receipt(facts, receipt_id)),
                "created_at": change.now,
            }
        )
    # Brand rows in ascending id: the project's lock order.
    for brand_id in sorted(by_brand):
        feed.append_changes(
            session, brand_id, ChangeKind.CONSENT_WITHDRAWN, change.now, by_brand[brand_id]
        )
    session.execute(insert(_RECEIPTS), receipts)
    session.flush()


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
