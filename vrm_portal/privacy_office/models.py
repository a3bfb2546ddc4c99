"""The privacy office's tables: ledger verification runs, and the search indexes it adds
to the consent ledger (its look-ups of consumer data are ``history.models.StaffAccess``,
beside the brands' reads: "Who read my data" shows both).

The ledger indexes are declared here, beside the console that needs them, rather than on
``ConsentEvent``: they only serve the console's keyset search. Collection methods live in
the hashed body, so each method gets a *partial* index whose predicate is a ``LIKE`` on
the canonical body (``"method":"gpc-signal"``); it is the same SQL on SQLite and
PostgreSQL, and the append path does not change.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from vrm_portal.clock import utcnow
from vrm_portal.consent.models import CollectionMethod, ConsentEvent
from vrm_portal.db import Base


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    #: The chain does not verify: ``first_bad_seq`` and ``problem`` say where and why.
    FAILED = "failed"
    #: The run itself broke (the job failed): nothing is known about the chain.
    ERROR = "error"


class VerificationRun(Base):
    """One full verification of the consent ledger, started from the console or daily."""

    __tablename__ = "verification_runs"
    __table_args__ = (Index("ix_verification_runs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Who started it; None for the scheduled daily run.
    started_by_id: Mapped[int | None]
    started_by_email: Mapped[str | None] = mapped_column(String(254))
    job_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING.value)
    #: Events checked so far, of ``total`` (the head's number when the run started).
    checked: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    first_bad_seq: Mapped[int | None] = mapped_column(BigInteger)
    first_bad_event_id: Mapped[str | None] = mapped_column(String(36))
    problem: Mapped[str | None] = mapped_column(Text)


#: The collection methods that have a partial index (frozen: the migration creates these;
#: a method added later is still searchable, without an index, until a migration adds it).
INDEXED_METHODS = (
    "portal",
    "email-confirmation",
    "gpc-signal",
    "expiry",
    "import",
    "api",
    "staff",
    "erasure",
    "purpose-retired",
)


def method_predicate(method: str) -> str:
    """The SQL test "the event's body says this collection method" (a known method only:
    it is inlined, so that the planner matches it with the partial index)."""
    if method not in INDEXED_METHODS:
        CollectionMethod(method)  # raises ValueError for anything unknown
    return f'body LIKE \'%"method":"{method}"%\''


_EVENTS = ConsentEvent.__table__
#: Keyset search over the whole log, newest first.
Index("ix_consent_events_occurred_at_seq", _EVENTS.c.occurred_at, _EVENTS.c.seq)
#: A brand, a brand's purpose, with a date range.
Index(
    "ix_consent_events_brand_purpose_time",
    _EVENTS.c.brand_slug,
    _EVENTS.c.purpose_key,
    _EVENTS.c.occurred_at,
    _EVENTS.c.seq,
)
Index("ix_consent_events_action_time", _EVENTS.c.action, _EVENTS.c.occurred_at, _EVENTS.c.seq)
#: One partial index per collection method (named by the method, dashes as underscores).
METHOD_INDEXES = {
    method: Index(
        f"ix_consent_events_method_{method.replace('-', '_')}",
        _EVENTS.c.occurred_at,
        _EVENTS.c.seq,
        sqlite_where=text(method_predicate(method)),
        postgresql_where=text(method_predicate(method)),
    )
    for method in INDEXED_METHODS
}
