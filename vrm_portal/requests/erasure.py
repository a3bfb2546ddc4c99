"""Erasing an account (GDPR art. 17): everything personal goes, in one transaction.

What happens, in order, inside the caller's transaction:

1. every consent still granted (or waiting for its email confirmation) is withdrawn with
   collection method ``erasure``: the ledger shows when and why each consent ended, and
   each brand's feed says ``consent.withdrawn``;
2. each brand that knew the consumer gets ``consumer.erased`` for its pairwise id, so it
   deletes on its side too;
3. every row that belongs to the account is deleted, table by table, then the account;
4. the account's data requests lose their link to it and keep only the pseudonymous
   subject key, for the privacy office.

The consent ledger itself is not touched: it never held more than the subject key, so
it stays verifiable and proves what was consented, and nobody can tell whose it was.

Nothing is committed here. A failure at any step raises, the caller rolls back, and the
account is exactly as it was: never half erased.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import (
    Account,
    AccountEvent,
    AuthSession,
    EmailToken,
    RecoveryCode,
)
from vrm_portal.accounts.passkeys.models import Passkey
from vrm_portal.accounts.social.models import LinkedIdentity, PendingIdentityLink
from vrm_portal.brands import feed
from vrm_portal.brands.models import Brand, BrandRelationship, ChangeKind
from vrm_portal.consent import ledger, sequencer
from vrm_portal.consent import service as consent_service
from vrm_portal.consent.models import (
    CollectionMethod,
    ConsentReceipt,
    ConsentState,
    ConsentStatus,
    PendingConfirmation,
)
from vrm_portal.consent.service import Change, Notary
from vrm_portal.history.models import Interaction
from vrm_portal.interests.models import DeclaredInterest, Intent, IntentBrand
from vrm_portal.jobs.models import Job
from vrm_portal.reminders.models import ReminderDigest
from vrm_portal.requests.models import DataRequest, RequestKind, RequestStatus
from vrm_portal.requests.service import pending_erasure, schedule_erasure

log = logging.getLogger(__name__)


def _table(model: type) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


#: The tables that hold the account's rows, children before parents. Every table with a
#: foreign key to ``accounts`` is here or in ``KEPT_WITHOUT_LINK``: a test checks that
#: against the schema, so a new table cannot be forgotten.
ERASED_TABLES: tuple[Table, ...] = (
    _table(PendingConfirmation),
    _table(ConsentReceipt),
    _table(ConsentState),
    _table(DeclaredInterest),
    _table(Interaction),
    _table(PendingIdentityLink),
    _table(LinkedIdentity),
    _table(Passkey),
    _table(RecoveryCode),
    _table(EmailToken),
    _table(AuthSession),
    _table(AccountEvent),
    _table(Job),
    _table(ReminderDigest),
    _table(BrandRelationship),
)

#: Tables whose rows outlive the account, unlinked (``account_id`` set to NULL).
KEPT_WITHOUT_LINK: tuple[Table, ...] = (_table(DataRequest),)

#: Tables that point only at staff accounts (who wrote a text draft, who invited whom).
#: Staff accounts do not ask for erasure (the request pages turn staff away; staff are
#: disabled in the administration console instead), and these foreign keys are
#: ``ON DELETE SET NULL`` should an operator remove a staff account by hand.
STAFF_ONLY_TABLES: frozenset[str] = frozenset({"text_drafts", "staff_invitations"})


@dataclass(frozen=True)
class Erased:
    """What an erasure did, without any personal data: for the request's record."""

    consents_withdrawn: int
    brands_told: int
    rows: dict[str, int]


@dataclass(frozen=True)
class Farewell:
    """What the final confirmation email needs, captured before the address is erased."""

    email: str
    locale: str | None
    time_zone: str | None
    reference: str
    erased_at: datetime
    brands_told: int


@dataclass(frozen=True)
class DueRun:
    """The outcome of one pass of the erasure worker."""

    erased: list[str]
    failed: list[str]


def erase_now(session: Session, notary: Notary, account: Account, now: datetime) -> Farewell:
    """Erase the account at once: completes its scheduled erasure, or records a new one."""
    request = pending_erasure(session, account.id) or schedule_erasure(
        session, account, now, grace=timedelta(0)
    )
    email, locale, time_zone = account.email, account.locale, account.time_zone
    outcome = erase_account(session, notary, account, request, now)
    return Farewell(email, locale, time_zone, request.reference, now, outcome.brands_told)


def process_due(
    session: Session,
    notary: Notary,
    now: datetime,
    *,
    limit: int = 100,
    farewell: Callable[[Farewell], None] = lambda _farewell: None,
) -> DueRun:
    """Erase the accounts whose grace period is over: one transaction (and commit) each.

    Cron-friendly: run it as often as you like. An account whose erasure fails is rolled
    back whole, its request stays scheduled with the failure counted, and the next pass
    tries again. ``farewell`` is called in each erasure's transaction, so its final email
    is queued with it and sent once it commits.
    """
    due_ids = session.scalars(
        select(DataRequest.id)
        .where(
            DataRequest.kind == RequestKind.ERASURE.value,
            DataRequest.status == RequestStatus.SCHEDULED.value,
            DataRequest.due_at <= now,
        )
        .order_by(DataRequest.due_at, DataRequest.id)
        .limit(limit)
    ).all()
    session.rollback()
    run = DueRun(erased=[], failed=[])
    for request_id in due_ids:
        try:
            done = _erase_due(session, notary, request_id, now)
            if done is not None:
                farewell(done)
            session.commit()
        except Exception as exc:  # one account's failure must not stop the others
            session.rollback()
            log.exception("erasure of request %s failed; it will be retried", request_id)
            _count_failure(session, request_id, exc)
            session.commit()
            run.failed.append(str(request_id))
            continue
        if done is not None:
            run.erased.append(done.reference)
    return run


def _erase_due(session: Session, notary: Notary, request_id: int, now: datetime) -> Farewell | None:
    request = session.get(DataRequest, request_id, with_for_update=True, populate_existing=True)
    if request is None or request.status != RequestStatus.SCHEDULED.value:
        return None  # cancelled meanwhile, or erased by another worker
    account = session.get(Account, request.account_id) if request.account_id else None
    if account is None:
        return None
    email, locale, time_zone = account.email, account.locale, account.time_zone
    outcome = erase_account(session, notary, account, request, now)
    return Farewell(email, locale, time_zone, request.reference, now, outcome.brands_told)


def _count_failure(session: Session, request_id: int, exc: Exception) -> None:
    request = session.get(DataRequest, request_id, populate_existing=True)
    if request is None:
        return
    attempts = int(request.detail.get("failed_attempts", 0)) + 1
    request.detail = {
        **request.detail,
        "failed_attempts": attempts,
        "last_error": type(exc).__name__,
    }


def erase_account(
    session: Session,
    notary: Notary,
    account: Account,
    request: DataRequest,
    now: datetime,
) -> Erased:
    """Erase ``account`` and complete ``request`` (its erasure request); see the module.

    Locks in the project's order, so that concurrent writers cannot deadlock with it: the
    ledger head, then every brand the consumer knows in ascending id (the withdrawals and
    the ``consumer.erased`` entries then only take locks already held).
    """
    session.flush()
    ledger.lock_head(session)
    relationships = session.execute(
        select(BrandRelationship.brand_id, BrandRelationship.pairwise_id)
        .where(BrandRelationship.account_id == account.id)
        .order_by(BrandRelationship.brand_id)
    ).all()
    session.execute(
        select(Brand.id)
        .where(Brand.id.in_([brand_id for brand_id, _pairwise in relationships]))
        .order_by(Brand.id)
        .with_for_update()
    ).all()
    withdrawn = _withdraw_standing_consents(session, notary, account, now)
    # With a worker sequencer the withdrawals wait in the intake: integrate them now,
    # under the head lock held, so the brands hear them before ``consumer.erased``.
    while sequencer.integrate(session):
        pass
    for brand_id, pairwise_id in relationships:
        feed.append_change(session, brand_id, ChangeKind.CONSUMER_ERASED, pairwise_id, now, {})
    rows = _delete_rows(session, account.id)
    outcome = Erased(consents_withdrawn=withdrawn, brands_told=len(relationships), rows=rows)
    request.status = RequestStatus.COMPLETED.value
    request.completed_at = now
    request.detail = {
        **request.detail,
        "consents_withdrawn": outcome.consents_withdrawn,
        "brands_told": outcome.brands_told,
        "rows_erased": outcome.rows,
    }
    session.execute(
        update(DataRequest).where(DataRequest.account_id == account.id).values(account_id=None)
    )
    session.execute(delete(_table(Account)).where(_table(Account).c.id == account.id))
    session.expunge(account)
    session.flush()
    return outcome


def _withdraw_standing_consents(
    session: Session, notary: Notary, account: Account, now: datetime
) -> int:
    states = session.scalars(
        select(ConsentState)
        .where(
            ConsentState.account_id == account.id,
            ConsentState.status.in_([ConsentStatus.GRANTED, ConsentStatus.PENDING]),
        )
        .order_by(ConsentState.id)
    ).all()
    change = Change(CollectionMethod.ERASURE, account.locale or "en", now, actor="subject")
    recorded = 0
    for state in states:
        result = consent_service.withdraw(session, notary, account, state.purpose, change=change)
        recorded += result.receipt is not None
    return recorded


def _delete_rows(session: Session, account_id: int) -> dict[str, int]:
    """Delete the account's rows from every table in ``ERASED_TABLES``, then its intents."""
    counts: dict[str, int] = {}
    intent_ids = select(Intent.id).where(Intent.account_id == account_id).scalar_subquery()
    counts["intent_brands"] = _count(
        session.execute(delete(IntentBrand).where(IntentBrand.intent_id.in_(intent_ids)))
    )
    counts["intents"] = _count(
        session.execute(delete(Intent).where(Intent.account_id == account_id))
    )
    for table in ERASED_TABLES:
        counts[table.name] = delete_account_rows(session, table, account_id)
    return counts


def delete_account_rows(session: Session, table: Table, account_id: int) -> int:
    """One table's share of an erasure (a seam the fault-injection test breaks)."""
    return _count(session.execute(delete(table).where(table.c.account_id == account_id)))


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
