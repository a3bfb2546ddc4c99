"""Searching the consent ledger: filters, keyset pages newest first, streamed exports.

Pages are keyset pages over ``(occurred_at, seq)``: a page names the event it starts
after (``before`` = older than it, ``after`` = newer than it), so the last page costs
what the first does, whatever the size of the log. Every filter combination has an index
to walk in that order (see ``privacy_office.models``); the collection method is read
from the canonical body through one partial index per method.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, TextClause, func, select, text, tuple_, type_coerce
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import BrandRelationship
from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentEvent, LedgerHead
from vrm_portal.db import UTCDateTime
from vrm_portal.privacy_office.models import METHOD_INDEXES, method_predicate
from vrm_portal.requests.export_formats import csv_cell

PAGE_SIZE = 50
EXPORT_BATCH = 2000


@dataclass(frozen=True)
class LogFilters:
    """What the search is restricted to; None is "any"."""

    subject_key: str | None = None
    brand: str | None = None
    purpose: str | None = None
    version: int | None = None
    action: str | None = None
    method: str | None = None
    #: Inclusive lower and exclusive upper bound of ``occurred_at``.
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> dict[str, Any]:
        """The filters as plain values (for the staff access record)."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
            if value is not None
        }


def subject_for_email(session: Session, email: str) -> str | None:
    """The subject key of the account with this address (the ledger never holds it)."""
    return session.scalar(select(Account.subject_key).where(Account.email == email.strip().lower()))


def subject_for_pairwise_id(session: Session, pairwise_id: str) -> tuple[str, str] | None:
    """The subject key and brand slug behind a brand's pairwise id, if it still exists."""
    from vrm_portal.brands.models import Brand

    row = session.execute(
        select(Account.subject_key, Brand.slug)
        .join(BrandRelationship, BrandRelationship.account_id == Account.id)
        .join(Brand, Brand.id == BrandRelationship.brand_id)
        .where(BrandRelationship.pairwise_id == pairwise_id.strip())
    ).first()
    return (row[0], row[1]) if row is not None else None


def _conditions(filters: LogFilters) -> list[ColumnElement[bool] | TextClause]:
    events = ConsentEvent
    where: list[ColumnElement[bool] | TextClause] = []
    if filters.subject_key is not None:
        where.append(events.subject_key == filters.subject_key)
    if filters.brand is not None:
        where.append(events.brand_slug == filters.brand)
    if filters.purpose is not None:
        where.append(events.purpose_key == filters.purpose)
    if filters.version is not None:
        # Keys are sorted in the canonical body: the version is followed by the text hash.
        where.append(events.body.contains(f'"purpose_version":{filters.version},"seq":'))
    if filters.action is not None:
        where.append(events.action == filters.action)
    if filters.method is not None:
        where.append(text(method_predicate(filters.method)))
    if filters.since is not None:
        where.append(events.occurred_at >= filters.since)
    if filters.until is not None:
        where.append(events.occurred_at < filters.until)
    return where


def _key() -> Any:
    return tuple_(ConsentEvent.occurred_at, ConsentEvent.seq)


def _cursor(moment: datetime, seq: int) -> Any:
    return tuple_(type_coerce(moment, UTCDateTime()), type_coerce(seq, ConsentEvent.seq.type))


@dataclass(frozen=True)
class EventRow:
    seq: int
    event_id: str
    occurred_at: datetime
    subject_key: str
    brand: str
    purpose: str
    purpose_version: int | None
    action: str
    method: str | None
    actor: str | None

    @classmethod
    def of(cls, event: ConsentEvent) -> EventRow:
        document = ledger.document_of(event)
        version = document.get("purpose_version")
        return cls(
            seq=event.seq,
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            subject_key=event.subject_key,
            brand=event.brand_slug,
            purpose=event.purpose_key,
            purpose_version=version if isinstance(version, int) else None,
            action=event.action,
            method=document.get("method"),
            actor=document.get("actor"),
        )


@dataclass(frozen=True)
class LogPage:
    rows: list[EventRow]
    total: int
    #: Cursor of the page of newer events (``after``), None when this page is the newest.
    newer: int | None
    #: Cursor of the page of older events (``before``), None when this page is the oldest.
    older: int | None


def _method_only(filters: LogFilters) -> bool:
    """Whether the collection method is the only filter with an index of its own."""
    return (
        filters.method in METHOD_INDEXES
        and not filters.subject_key
        and not filters.brand
        and not filters.action
    )


def count(session: Session, filters: LogFilters) -> int:
    """How many events match.

    On SQLite, a count by collection method alone is made over the method's partial index
    in its order: SQLite's planner does not weigh the ``LIKE`` it would run on every body
    of the table, and for a common method preferred scanning the table (13 times slower).
    """
    if filters == LogFilters():
        # The whole log: its numbering has no gap, so the head's number is the count.
        return int(session.scalar(select(LedgerHead.seq).where(LedgerHead.id == 1)) or 0)
    where = _conditions(filters)
    if _method_only(filters) and session.get_bind().dialect.name == "sqlite":
        ordered = (
            select(ConsentEvent.seq)
            .where(*where)
            .order_by(ConsentEvent.occurred_at, ConsentEvent.seq)
            .subquery("by_method")
        )
        return int(session.scalar(select(func.count()).select_from(ordered)) or 0)
    query = select(func.count()).select_from(ConsentEvent).where(*where)
    return int(session.scalar(query) or 0)


def _position(session: Session, seq: int) -> datetime | None:
    return session.scalar(select(ConsentEvent.occurred_at).where(ConsentEvent.seq == seq))


def search(
    session: Session,
    filters: LogFilters,
    *,
    before: int | None = None,
    after: int | None = None,
    last: bool = False,
    per_page: int = PAGE_SIZE,
) -> LogPage:
    """One page of matching events, newest first.

    ``before=seq``: the page of events older than event ``seq``; ``after=seq``: the
    page newer than it; ``last``: the oldest page. A cursor naming no event gives the
    newest page.
    """
    query = select(ConsentEvent).where(*_conditions(filters))
    newest_first = True
    anchor = before if before is not None else after
    moment = _position(session, anchor) if anchor is not None else None
    if moment is not None and anchor is not None and before is not None:
        query = query.where(_key() < _cursor(moment, anchor))
    elif moment is not None and anchor is not None:
        query = query.where(_key() > _cursor(moment, anchor))
        newest_first = False
    elif last:
        newest_first = False
    else:
        before = after = None
    order = (
        (ConsentEvent.occurred_at.desc(), ConsentEvent.seq.desc())
        if newest_first
        else (ConsentEvent.occurred_at, ConsentEvent.seq)
    )
    events = list(session.scalars(query.order_by(*order).limit(per_page + 1)))
    more = len(events) > per_page
    events = events[:per_page]
    if not newest_first:
        events.reverse()
    rows = [EventRow.of(event) for event in events]
    total = count(session, filters)
    if not rows:
        return LogPage(rows, total, None, None)
    if newest_first:
        has_newer, has_older = before is not None, more
    elif last and moment is None:
        has_newer, has_older = more, False
    else:
        has_newer, has_older = more, True
    return LogPage(
        rows,
        total,
        newer=rows[0].seq if has_newer else None,
        older=rows[-1].seq if has_older else None,
    )


def subjects_on(page: LogPage) -> set[str]:
    return {row.subject_key for row in page.rows}


# ---- exports ---------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "seq",
    "event_id",
    "occurred_at",
    "subject_key",
    "brand",
    "purpose",
    "purpose_version",
    "action",
    "method",
    "actor",
)


_EXPORTED = (
    ConsentEvent.seq,
    ConsentEvent.event_id,
    ConsentEvent.occurred_at,
    ConsentEvent.subject_key,
    ConsentEvent.brand_slug,
    ConsentEvent.purpose_key,
    ConsentEvent.action,
    ConsentEvent.body,
)


def _batches(session: Session, filters: LogFilters, batch: int) -> Iterator[list[EventRow]]:
    """Every matching event, oldest first, read in keyset batches of plain rows (no ORM
    objects: flat memory, and the body is parsed once with orjson)."""
    position: tuple[datetime, int] | None = None
    while True:
        query = select(*_EXPORTED).where(*_conditions(filters))
        if position is not None:
            query = query.where(_key() > _cursor(*position))
        query = query.order_by(ConsentEvent.occurred_at, ConsentEvent.seq).limit(batch)
        rows = session.execute(query).all()
        if not rows:
            return
        position = (rows[-1].occurred_at, rows[-1].seq)
        yield [_row(*row) for row in rows]


def _row(
    seq: int,
    event_id: str,
    occurred_at: datetime,
    subject_key: str,
    brand: str,
    purpose: str,
    action: str,
    body: str,
) -> EventRow:
    document = orjson.loads(body)
    version = document.get("purpose_version")
    return EventRow(
        seq=seq,
        event_id=event_id,
        occurred_at=occurred_at,
        subject_key=subject_key,
        brand=brand,
        purpose=purpose,
        purpose_version=version if isinstance(version, int) else None,
        action=action,
        method=document.get("method"),
        actor=document.get("actor"),
    )


def _values(row: EventRow) -> tuple[Any, ...]:
    return (
        row.seq,
        row.event_id,
        ledger.format_timestamp(row.occurred_at),
        row.subject_key,
        row.brand,
        row.purpose,
        row.purpose_version,
        row.action,
        row.method,
        row.actor,
    )


def export_csv(
    session: Session, filters: LogFilters, *, batch: int = EXPORT_BATCH
) -> Iterator[bytes]:
    """The matching events as CSV (UTF-8), a chunk per batch; no cell runs as a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    yield buffer.getvalue().encode()
    for rows in _batches(session, filters, batch):
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow(csv_cell(value) for value in _values(row))
        yield buffer.getvalue().encode()


def export_json(
    session: Session, filters: LogFilters, *, batch: int = EXPORT_BATCH
) -> Iterator[bytes]:
    """The matching events as one JSON document ``{"filters": ..., "events": [...]}``."""
    yield b'{"filters":' + orjson.dumps(filters.describe()) + b',"events":['
    first = True
    for rows in _batches(session, filters, batch):
        parts = []
        for row in rows:
            parts.append(orjson.dumps(dict(zip(EXPORT_COLUMNS, _values(row), strict=True))))
        chunk = b",".join(parts)
        yield chunk if first else b"," + chunk
        first = False
    yield b"]}\n"
