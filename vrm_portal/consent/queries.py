"""Read models for the consent pages: what each purpose says and where the consumer stands."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand
from vrm_portal.consent import ledger
from vrm_portal.consent.models import (
    ConsentEvent,
    ConsentReceipt,
    ConsentState,
    ConsentStatus,
    Purpose,
    PurposeVersion,
)
from vrm_portal.consent.service import is_active, states_of


class Standing(enum.StrEnum):
    """Where the consumer stands on one purpose, as the page shows it."""

    GRANTED = "granted"
    PENDING = "pending"
    NEEDS_RENEWAL = "needs-renewal"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    NOT_GIVEN = "not-given"


@dataclass(frozen=True)
class PurposeView:
    purpose: Purpose
    current: PurposeVersion
    state: ConsentState | None
    #: The text the consumer agreed to (may be older than ``current``).
    agreed: PurposeVersion | None
    standing: Standing
    #: The receipt of the consumer's last change to this purpose, if any.
    receipt_id: str | None = None


def standing_of(state: ConsentState | None, purpose: Purpose, now: datetime) -> Standing:
    if state is None:
        return Standing.NOT_GIVEN
    if is_active(state, purpose, now):
        return Standing.GRANTED
    if state.status == ConsentStatus.PENDING:
        return Standing.PENDING
    if state.status == ConsentStatus.GRANTED:
        if state.expires_at is not None and state.expires_at <= now:
            return Standing.EXPIRED
        return Standing.NEEDS_RENEWAL
    if state.status == ConsentStatus.EXPIRED:
        return Standing.EXPIRED
    return Standing.WITHDRAWN


def purpose_views(
    session: Session, account: Account, brand: Brand, now: datetime
) -> list[PurposeView]:
    purposes = list(
        session.scalars(
            select(Purpose)
            .where(
                Purpose.brand_id == brand.id,
                Purpose.current_version > 0,
                Purpose.retired_at.is_(None),
            )
            .order_by(Purpose.position, Purpose.id)
        )
    )
    states = states_of(session, account, purposes)
    versions = {
        (v.purpose_id, v.version): v
        for v in session.scalars(
            select(PurposeVersion).where(PurposeVersion.purpose_id.in_([p.id for p in purposes]))
        )
    }
    last_seqs = [s.last_event_seq for s in states.values() if s.last_event_seq is not None]
    receipts: dict[int, str] = {}
    if last_seqs:
        rows = session.execute(
            select(ConsentReceipt.event_seq, ConsentReceipt.receipt_id).where(
                ConsentReceipt.account_id == account.id,
                ConsentReceipt.event_seq.in_(last_seqs),
            )
        )
        receipts = {seq: receipt_id for seq, receipt_id in rows if seq is not None}
    views = []
    for purpose in purposes:
        state = states.get(purpose.id)
        agreed = versions.get((purpose.id, state.version)) if state else None
        views.append(
            PurposeView(
                purpose=purpose,
                current=versions[(purpose.id, purpose.current_version)],
                state=state,
                agreed=agreed,
                standing=standing_of(state, purpose, now),
                receipt_id=receipts.get(state.last_event_seq)
                if state and state.last_event_seq is not None
                else None,
            )
        )
    return views


@dataclass(frozen=True)
class BrandSummary:
    brand: Brand
    granted: int
    total: int
    #: Purposes whose consent needs renewal or has expired.
    attention: int


def brand_summaries(session: Session, account: Account, now: datetime) -> list[BrandSummary]:
    summaries = []
    for brand in session.scalars(select(Brand).order_by(Brand.name)):
        views = purpose_views(session, account, brand, now)
        summaries.append(
            BrandSummary(
                brand=brand,
                granted=sum(1 for v in views if v.standing == Standing.GRANTED),
                total=len(views),
                attention=sum(
                    1 for v in views if v.standing in (Standing.NEEDS_RENEWAL, Standing.EXPIRED)
                ),
            )
        )
    return summaries


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    occurred_at: datetime
    brand: Brand | None
    purpose_title: str
    purpose_version: int
    action: str
    method: str
    expires_at: datetime | None
    receipt_id: str | None


def history(
    session: Session,
    account: Account,
    locale: str,
    *,
    page: int,
    per_page: int = 20,
    brand: Brand | None = None,
) -> tuple[list[HistoryEntry], int]:
    """One page of the consumer's consent events, newest first, read from the ledger."""
    query = select(ConsentEvent).where(ConsentEvent.subject_key == account.subject_key)
    if brand is not None:
        query = query.where(ConsentEvent.brand_slug == brand.slug)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    events = list(
        session.scalars(
            query.order_by(ConsentEvent.seq.desc()).offset((page - 1) * per_page).limit(per_page)
        )
    )
    receipt_rows = session.execute(
        select(ConsentReceipt.event_seq, ConsentReceipt.receipt_id).where(
            ConsentReceipt.account_id == account.id,
            ConsentReceipt.event_seq.in_([e.seq for e in events]),
        )
    )
    receipts = {seq: receipt_id for seq, receipt_id in receipt_rows}
    brands = {b.slug: b for b in session.scalars(select(Brand))}
    titles = _titles(session, locale)
    entries = []
    for event in events:
        doc: dict[str, Any] = ledger.document_of(event)
        key = (doc["brand"], doc["purpose"], doc["purpose_version"])
        entries.append(
            HistoryEntry(
                seq=event.seq,
                occurred_at=ledger.parse_timestamp(doc["occurred_at"]),
                brand=brands.get(doc["brand"]),
                purpose_title=titles.get(key, doc["purpose"]),
                purpose_version=doc["purpose_version"],
                action=doc["action"],
                method=doc["method"],
                expires_at=ledger.parse_timestamp(doc["expires_at"]) if doc["expires_at"] else None,
                receipt_id=receipts.get(event.seq),
            )
        )
    return entries, total


def purpose_titles(session: Session, locale: str) -> dict[tuple[str, str, int], str]:
    """Every purpose text's title in ``locale``, by (brand slug, purpose key, version): how
    pages name the purpose of a ledger event, which records only keys."""
    return _titles(session, locale)


def _titles(session: Session, locale: str) -> dict[tuple[str, str, int], str]:
    rows = session.execute(
        select(
            Brand.slug,
            Purpose.key,
            PurposeVersion.version,
            PurposeVersion.title_en,
            PurposeVersion.title_fr,
        )
        .join(Purpose, Purpose.brand_id == Brand.id)
        .join(PurposeVersion, PurposeVersion.purpose_id == Purpose.id)
    )
    return {
        (slug, key, version): (title_fr if locale == "fr" else title_en)
        for slug, key, version, title_en, title_fr in rows
    }


def receipt_of(session: Session, account: Account, receipt_id: str) -> ConsentReceipt | None:
    """The consumer's own receipt; None for an unknown id or somebody else's."""
    return session.scalar(
        select(ConsentReceipt).where(
            ConsentReceipt.receipt_id == receipt_id, ConsentReceipt.account_id == account.id
        )
    )
