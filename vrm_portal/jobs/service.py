"""Background jobs: enqueue in the caller's transaction, run at least once, fail visibly.

Invariants:

- **Enqueue after commit.** ``enqueue`` adds a ``jobs`` row in the caller's session and
  remembers its id on the session; only when that session's transaction *commits* is
  the id handed to the job engine (``after_commit`` below). A rolled-back transaction
  takes its rows with it and hands nothing over.
- **The row is the truth.** Huey carries ids, not work. A worker *claims* a row (one
  ``UPDATE ... WHERE`` that only a queued row whose time has come, or a running row
  whose lease has ended, satisfies), so two workers never run a job at the same time
  and a finished job never runs again. Huey takes a task off its queue when a worker
  starts it, so a worker killed mid-job would lose it: ``recover_stalled`` (every
  minute, and when a consumer starts) hands such rows to the engine again.
- **One commit for the work and the outcome.** The handler's writes, and ``done``, are
  committed together after the handler's emails were sent. A failure rolls the work
  back, counts the attempt, keeps the error, and schedules a retry with back-off; after
  ``max_attempts`` the job is ``failed`` (the consoles list those; ``retry`` revives one).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app, has_app_context
from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.orm import Session

from vrm_portal.clock import utcnow
from vrm_portal.jobs import registry
from vrm_portal.jobs.models import Job, JobStatus

log = logging.getLogger(__name__)

#: ``session.info`` key of the ids enqueued in the session's current transaction.
PENDING_KEY = "vrm_jobs_pending"
ERROR_TEXT_LIMIT = 1000
#: A queued job whose time came this long ago and that nobody ran is handed over again.
STALL_GRACE = timedelta(seconds=60)

#: Hands a committed job id to the engine, to run now or after ``delay`` seconds.
Dispatch = Callable[[str, float | None], None]


def new_job_id() -> str:
    return secrets.token_hex(16)


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    account_id: int | None = None,
    delay: timedelta | None = None,
) -> str:
    """Record a job in ``session``'s transaction; it is handed to a worker on commit."""
    job_kind = registry.kind(kind)
    now = utcnow()
    job = Job(
        id=new_job_id(),
        kind=kind,
        payload=payload or {},
        account_id=account_id,
        status=JobStatus.QUEUED.value,
        attempts=0,
        max_attempts=job_kind.max_attempts,
        created_at=now,
        next_attempt_at=now + (delay or timedelta()),
    )
    session.add(job)
    session.info.setdefault(PENDING_KEY, []).append(
        (job.id, delay.total_seconds() if delay else None)
    )
    return job.id


def dispatch_committed(session: Session) -> None:
    """Hand the ids enqueued in ``session``'s committed transaction to the engine."""
    pending: list[tuple[str, float | None]] = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    if not has_app_context() or "vrm_jobs" not in current_app.extensions:
        log.warning(
            "%d job(s) committed outside the app: the next recovery pass runs them", len(pending)
        )
        return
    dispatch: Dispatch = current_app.extensions["vrm_jobs"].dispatch
    for job_id, delay in pending:
        try:
            dispatch(job_id, delay)
        except Exception:  # the engine is down: the job stays queued, recovery finds it
            log.exception("could not hand job %s to the engine; recovery will", job_id)


def forget_rolled_back(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


# ---- running ----------------------------------------------------------------------


class LeaseLost(Exception):
    """A checkpoint found the job taken over by another worker (our lease had ended)."""


@dataclass(frozen=True)
class Outcome:
    """What ``run_job`` did with a job id."""

    #: ``done``, ``retry``, ``failed``, or ``skipped`` (not ours to run now).
    status: str
    #: For ``retry``: seconds until the next attempt.
    retry_in: float | None = None


@dataclass(frozen=True)
class _Claimed:
    attempt: int
    kind: str
    payload: dict[str, Any]
    account_id: int | None
    max_attempts: int


def _claim(session: Session, job_id: str, lease: timedelta, now: datetime) -> _Claimed | None:
    """Take the job for this worker (and commit), or None if it is not ours to run now.

    Nothing of the job is held open afterwards: on SQLite a transaction holds the
    database's write lock, which must not last through a handler's SMTP conversation.
    """
    result = cast(
        CursorResult[Any],
        session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(
                    and_(Job.status == JobStatus.QUEUED.value, Job.next_attempt_at <= now),
                    and_(Job.status == JobStatus.RUNNING.value, Job.lease_until < now),
                ),
            )
            .values(
                status=JobStatus.RUNNING.value,
                attempts=Job.attempts + 1,
                started_at=now,
                lease_until=now + lease,
            )
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount != 1:
        session.rollback()
        return None
    row = session.execute(
        select(Job.attempts, Job.kind, Job.payload, Job.account_id, Job.max_attempts).where(
            Job.id == job_id
        )
    ).one()
    session.commit()
    return _Claimed(
        int(row.attempts), row.kind, dict(row.payload or {}), row.account_id, int(row.max_attempts)
    )


def _still_ours(job_id: str, attempt: int) -> Any:
    return and_(Job.id == job_id, Job.status == JobStatus.RUNNING.value, Job.attempts == attempt)


def run_job(
    sessions: Callable[[], Session],
    job_id: str,
    send: Callable[[Any], None],
    *,
    lease: timedelta | None = None,
) -> Outcome:
    """Run job ``job_id`` once if it is due and free: the one entry point of every worker.

    ``lease`` overrides the job kind's own (``VRM_JOBS_LEASE_SECONDS``)."""
    now = utcnow()
    with sessions() as session:
        kind_name = session.execute(select(Job.kind).where(Job.id == job_id)).scalar()
        session.rollback()
        if kind_name is None:
            return Outcome("skipped")
        try:
            job_kind = registry.kind(kind_name)
        except registry.UnknownJobKind:
            _fail(sessions, job_id, None, f"no handler for job kind {kind_name!r}", final=True)
            return Outcome("failed")
        job_lease = lease or job_kind.lease
        claimed = _claim(session, job_id, job_lease, now)
        if claimed is None:
            return Outcome("skipped")
        attempt = claimed.attempt
        context = registry.JobContext(
            session=session,
            job_id=job_id,
            kind=claimed.kind,
            payload=claimed.payload,
            account_id=claimed.account_id,
            attempt=attempt,
        )

        def checkpoint(done: int, total: int | None, state: dict[str, Any]) -> None:
            mine = cast(
                CursorResult[Any],
                session.execute(
                    update(Job)
                    .where(_still_ours(job_id, attempt))
                    .values(
                        progress_done=done,
                        progress_total=total,
                        payload=dict(context.payload),
                        lease_until=utcnow() + job_lease,
                    )
                    .execution_options(synchronize_session=False)
                ),
            )
            if mine.rowcount != 1:
                # Our lease ended and another worker took the job over: this run's
                # uncommitted work is dropped; the other run does it.
                session.rollback()
                raise LeaseLost(job_id)
            session.commit()

        context._checkpoint = checkpoint
        try:
            result = job_kind.handler(context)
            for message in context.outgoing:
                send(message)
            finished = cast(
                CursorResult[Any],
                session.execute(
                    update(Job)
                    .where(_still_ours(job_id, attempt))
                    .values(
                        status=JobStatus.DONE.value,
                        finished_at=utcnow(),
                        lease_until=None,
                        payload=None,
                        last_error=None,
                        result=result,
                    )
                    .execution_options(synchronize_session=False)
                ),
            )
            if finished.rowcount != 1:
                # Our lease ended and another worker took the job: its run counts.
                session.rollback()
                return Outcome("skipped")
            session.commit()
            return Outcome("done")
        except LeaseLost:
            log.warning("job %s: lease lost to another worker; this run stops", job_id)
            return Outcome("skipped")
        except registry.PermanentJobError as exc:
            session.rollback()
            _fail(sessions, job_id, attempt, _describe(exc), final=True)
            return Outcome("failed")
        except Exception as exc:
            session.rollback()
            log.warning(
                "job %s (%s) attempt %d failed: %s", job_id, job_kind.name, attempt, _describe(exc)
            )
            final = attempt >= claimed.max_attempts
            delay = registry.retry_delay(job_kind, attempt)
            _fail(sessions, job_id, attempt, _describe(exc), final=final, delay=delay)
            if final:
                return Outcome("failed")
            return Outcome("retry", retry_in=delay.total_seconds())


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:ERROR_TEXT_LIMIT]


def _fail(
    sessions: Callable[[], Session],
    job_id: str,
    attempt: int | None,
    error: str,
    *,
    final: bool,
    delay: timedelta | None = None,
) -> None:
    now = utcnow()
    condition = Job.id == job_id if attempt is None else _still_ours(job_id, attempt)
    values: dict[str, Any] = {"last_error": error, "lease_until": None}
    if final:
        values |= {"status": JobStatus.FAILED.value, "finished_at": now}
    else:
        values |= {
            "status": JobStatus.QUEUED.value,
            "next_attempt_at": now + (delay or timedelta()),
        }
    with sessions() as session:
        session.execute(
            update(Job)
            .where(condition)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    if final:
        log.error("job %s failed for good: %s", job_id, error)


# ---- recovery and operations ----------------------------------------------------------


def stalled_job_ids(session: Session, *, now: datetime, limit: int = 500) -> list[str]:
    """Jobs that should be running and are not: queued past their time (plus a grace,
    for the engine to deliver them) or running past their lease (their worker died)."""
    rows = session.scalars(
        select(Job.id)
        .where(
            or_(
                and_(
                    Job.status == JobStatus.QUEUED.value,
                    Job.next_attempt_at <= now - STALL_GRACE,
                ),
                and_(Job.status == JobStatus.RUNNING.value, Job.lease_until < now),
            )
        )
        .order_by(Job.next_attempt_at)
        .limit(limit)
    )
    return list(rows)


def due_job_ids(session: Session, *, now: datetime, limit: int = 500) -> list[str]:
    """Every job that may run now (for ``vrm jobs-run`` and the tests' manual runs)."""
    rows = session.scalars(
        select(Job.id)
        .where(
            or_(
                and_(Job.status == JobStatus.QUEUED.value, Job.next_attempt_at <= now),
                and_(Job.status == JobStatus.RUNNING.value, Job.lease_until < now),
            )
        )
        .order_by(Job.next_attempt_at, Job.created_at)
        .limit(limit)
    )
    return list(rows)


def retry(session: Session, job_id: str) -> bool:
    """Queue a failed job again, with a fresh set of attempts; False if it is not failed."""
    result = cast(
        CursorResult[Any],
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.FAILED.value)
            .values(
                status=JobStatus.QUEUED.value,
                attempts=0,
                next_attempt_at=utcnow(),
                finished_at=None,
            )
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount == 1:
        session.info.setdefault(PENDING_KEY, []).append((job_id, None))
        return True
    return False


@dataclass(frozen=True)
class JobCounts:
    queued: int
    running: int
    done: int
    failed: int


def counts(session: Session) -> JobCounts:
    rows = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    return JobCounts(
        queued=rows.get(JobStatus.QUEUED.value, 0),
        running=rows.get(JobStatus.RUNNING.value, 0),
        done=rows.get(JobStatus.DONE.value, 0),
        failed=rows.get(JobStatus.FAILED.value, 0),
    )


def failed_jobs(session: Session, *, limit: int = 100) -> Sequence[Job]:
    """The failed jobs, newest first, with their last error."""
    return session.scalars(
        select(Job)
        .where(Job.status == JobStatus.FAILED.value)
        .order_by(Job.finished_at.desc(), Job.id)
        .limit(limit)
    ).all()


def recent_jobs(session: Session, *, kind: str | None = None, limit: int = 50) -> Sequence[Job]:
    query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return session.scalars(query).all()
