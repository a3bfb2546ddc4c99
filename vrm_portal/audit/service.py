"""Recording and searching staff actions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.audit.models import StaffAction
from vrm_portal.requests.export_formats import csv_cell

REDACTED = "[redacted]"
#: Keys whose values are never written to the trail, whatever the caller passes.
_SECRET_WORDS = ("secret", "password", "token", "totp", "recovery_code", "key_hash", "private")


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A copy of ``values`` fit for the trail: secrets replaced, nested mappings too."""
    if values is None:
        return None
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if _is_secret(str(key)):
            clean[str(key)] = REDACTED
        elif isinstance(value, Mapping):
            clean[str(key)] = redact(value)
        elif isinstance(value, datetime):
            clean[str(key)] = value.isoformat()
        elif isinstance(value, (str, int, float, bool)) or value is None:
            clean[str(key)] = value
        elif isinstance(value, (list, tuple, set, frozenset)):
            clean[str(key)] = [
                v if isinstance(v, (str, int, float, bool)) else str(v) for v in value
            ]
        else:
            clean[str(key)] = str(value)
    return clean


def record(
    session: Session,
    *,
    actor: Account,
    action: str,
    object_type: str,
    object_id: object = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str = "",
) -> StaffAction:
    """Append one action to the trail in the caller's transaction (commits with it)."""
    row = StaffAction(
        actor_id=actor.id,
        actor_email=actor.email,
        actor_role=actor.staff_role or "consumer",
        action=action,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        before=redact(before),
        after=redact(after),
        reason=reason,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class Filters:
    actor_email: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _query(filters: Filters) -> Select[StaffAction]:
    query = select(StaffAction)
    if filters.actor_email:
        query = query.where(StaffAction.actor_email == filters.actor_email.strip().lower())
    if filters.action:
        query = query.where(StaffAction.action == filters.action)
    if filters.object_type:
        query = query.where(StaffAction.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(StaffAction.object_id == filters.object_id)
    if filters.since is not None:
        query = query.where(StaffAction.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(StaffAction.occurred_at < filters.until)
    return query


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[StaffAction]
    #: The ``before`` cursor of the next (older) page, or None on the last page.
    next_before: int | None


def search(
    session: Session, filters: Filters, *, before_id: int | None = None, limit: int = 50
) -> Page:
    """Newest first, keyset-paged on the id (a deep page costs what the first does)."""
    query = _query(filters)
    if before_id is not None:
        query = query.where(StaffAction.id < before_id)
    rows = list(session.scalars(query.order_by(StaffAction.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_before=rows[-1].id if more and rows else None)


CSV_COLUMNS = (
    "id",
    "occurred_at",
    "actor_email",
    "actor_role",
    "action",
    "object_type",
    "object_id",
    "reason",
    "before",
    "after",
)


def export_csv(session: Session, filters: Filters, *, batch: int = 1000) -> Iterator[str]:
    """The matching rows as CSV text chunks, oldest first, read in keyset batches.

    Cells that a spreadsheet would run as a formula are neutralised (``csv_cell``).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    last = 0
    while True:
        query = _query(filters).where(StaffAction.id > last).order_by(StaffAction.id).limit(batch)
        rows = list(session.scalars(query))
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow(
                csv_cell(value)
                for value in (
                    row.id,
                    row.occurred_at.isoformat().replace("+00:00", "Z"),
                    row.actor_email,
                    row.actor_role,
                    row.action,
                    row.object_type,
                    row.object_id,
                    row.reason,
                    "" if row.before is None else json.dumps(row.before, sort_keys=True),
                    "" if row.after is None else json.dumps(row.after, sort_keys=True),
                )
            )
        yield buffer.getvalue()
        last = rows[-1].id
