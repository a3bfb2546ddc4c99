"""The durable record of background work: one ``jobs`` row per job.

The row is written in the transaction that asks for the work, so a rolled-back request
leaves no job; the job engine (Huey) only carries the row's id to a worker once that
transaction has committed. The row, not the queue, is the truth: a worker claims it
with a lease, records each failed attempt and its error, and marks it ``done`` or, after
its last attempt, ``failed``. A job taken by a worker that was killed is found again
when its lease ends (see ``jobs/service.py``).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class JobStatus(enum.StrEnum):
    #: Waiting for a worker (first attempt, or a retry once ``next_attempt_at`` comes).
    QUEUED = "queued"
    #: A worker holds it until ``lease_until``.
    RUNNING = "running"
    DONE = "done"
    #: Gave up after ``max_attempts``; ``last_error`` says why. "Retry" queues it again.
    FAILED = "failed"


def _values(enum_class: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum_class)


class Job(Base):
    """One piece of background work: what to do (``kind`` + ``payload``) and how it went."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_values(JobStatus)})", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_jobs_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_jobs_kind_created_at", "kind", "created_at"),
    )

    #: Random, unguessable; also the Message-ID of an email the job sends.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The handler's name, e.g. ``mail.password_reset`` (see ``jobs/registry.py``).
    kind: Mapped[str] = mapped_column(String(64))
    #: The handler's arguments (JSON). Emptied once the job is done: it may hold an
    #: address or a link that is no longer needed.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The account the job is about, if any: its jobs are deleted with it (erasure).
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=8)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When a queued job may next run (retries wait here, with back-off).
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    #: A running job belongs to its worker until then; afterwards anyone may take it.
    lease_until: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    #: The last failed attempt's error (type and message, no traceback), for the consoles.
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Progress of long jobs: units done of ``progress_total`` (None when not measured).
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int | None]
    #: What the handler reported when it finished (counts, never personal data).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"<Job {self.kind} {self.id} {self.status}>"
