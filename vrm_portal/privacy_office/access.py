"""Who in the privacy office looked at which consumer's data, when, and why.

Every console page that shows data about consumers calls ``record_lookup`` in the
request's transaction, together with the staff audit trail entry: the page and its
record commit together. A consumer reads the look-ups that named them in "Who read my
data" (``lookups_of``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.audit import service as audit
from vrm_portal.clock import utcnow
from vrm_portal.history.models import LookupKind, StaffAccess

REASON_MAX = 500


def record_lookup(
    session: Session,
    staff: Account,
    *,
    kind: LookupKind,
    reason: str,
    subjects: Iterable[str | None],
    detail: Mapping[str, Any],
    action: str,
    object_type: str = "consent_log",
    object_id: object = "",
) -> list[StaffAccess]:
    """One access row per consumer the page showed (one without a subject when it showed
    none in particular), and one entry in the staff audit trail."""
    now = utcnow()
    named: list[str | None] = [*sorted({key for key in subjects if key})]
    keys = named or [None]
    rows = [
        StaffAccess(
            at=now,
            staff_id=staff.id,
            staff_email=staff.email,
            subject_key=key,
            kind=kind.value,
            detail=dict(detail),
            reason=reason,
        )
        for key in keys
    ]
    session.add_all(rows)
    audit.record(
        session,
        actor=staff,
        action=action,
        object_type=object_type,
        object_id=object_id,
        after={**detail, "consumers": len([k for k in keys if k])},
        reason=reason,
    )
    session.flush()
    return rows


@dataclass(frozen=True)
class Lookup:
    at: datetime
    reason: str


def lookups_of(
    session: Session, subject_key: str, *, page: int = 1, per_page: int = 25
) -> tuple[list[Lookup], int]:
    """The privacy office's look-ups of this consumer, newest first, and their number."""
    mine = StaffAccess.subject_key == subject_key
    total = session.scalar(select(func.count()).select_from(StaffAccess).where(mine)) or 0
    rows = session.execute(
        select(StaffAccess.at, StaffAccess.reason)
        .where(mine)
        .order_by(StaffAccess.at.desc(), StaffAccess.id.desc())
        .offset((max(page, 1) - 1) * per_page)
        .limit(per_page)
    )
    return [Lookup(at, reason) for at, reason in rows], int(total)
