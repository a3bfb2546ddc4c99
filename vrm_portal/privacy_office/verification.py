"""Full verifications of the consent ledger, as jobs with a progress bar.

A run is a ``verification_runs`` row: started from the console (``start_run``) or by the
daily schedule (``schedule.verify_ledger``). The job streams the ledger through
``ledger.verify`` on a read-only connection; after each batch it writes the run's
progress and commits it in a short transaction of its own (with the job's checkpoint),
so the console's bar moves, survives a reload, and the lease is extended. The outcome
(OK, or the first bad event and why) is kept on the row; a failure is emailed to every
data protection officer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.audit import service as audit
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger
from vrm_portal.consent.models import LedgerHead
from vrm_portal.db import READ_ONLY
from vrm_portal.jobs.registry import JobContext, handler
from vrm_portal.jobs.service import enqueue
from vrm_portal.mail import send_later
from vrm_portal.privacy_office.models import RunStatus, VerificationRun

JOB_KIND = "privacy_office.verify_ledger"
SCHEDULED_KIND = "schedule.verify_ledger"
#: Seconds between two progress writes (the last batch is always written).
PROGRESS_EVERY = 0.5
LEASE = timedelta(hours=2)


class RunAlreadyGoing(Exception):
    """A verification is already running: one at a time is enough."""

    def __init__(self, run: VerificationRun) -> None:
        super().__init__(f"verification {run.id} is still running")
        self.run = run


def _head_seq(session: Session) -> int:
    return int(session.scalar(select(LedgerHead.seq).where(LedgerHead.id == 1)) or 0)


def running_run(session: Session) -> VerificationRun | None:
    return session.scalar(
        select(VerificationRun)
        .where(VerificationRun.status == RunStatus.RUNNING.value)
        .order_by(VerificationRun.id.desc())
        .limit(1)
    )


def start_run(session: Session, staff: Account) -> VerificationRun:
    """Record a run started by ``staff`` and enqueue its job (handed over on commit)."""
    going = running_run(session)
    if going is not None:
        raise RunAlreadyGoing(going)
    run = VerificationRun(
        started_at=utcnow(),
        started_by_id=staff.id,
        started_by_email=staff.email,
        status=RunStatus.RUNNING.value,
        checked=0,
        total=_head_seq(session),
    )
    session.add(run)
    session.flush()
    run.job_id = enqueue(session, JOB_KIND, {"run_id": run.id})
    audit.record(
        session,
        actor=staff,
        action="ledger.verification_started",
        object_type="verification_run",
        object_id=run.id,
        after={"total": run.total},
    )
    session.flush()
    return run


def recent_runs(
    session: Session, *, limit: int = 20, before_id: int | None = None
) -> list[VerificationRun]:
    query = select(VerificationRun).order_by(VerificationRun.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(VerificationRun.id < before_id)
    return list(session.scalars(query))


def last_finished(session: Session) -> VerificationRun | None:
    return session.scalar(
        select(VerificationRun)
        .where(VerificationRun.status != RunStatus.RUNNING.value)
        .order_by(VerificationRun.id.desc())
        .limit(1)
    )


def run_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(VerificationRun)) or 0)


@dataclass(frozen=True)
class Progress:
    """What the progress bar shows."""

    status: str
    checked: int
    total: int
    percent: int
    #: Events per second so far (None before the first batch).
    rate: float | None
    #: Seconds left at that rate (None when unknown).
    seconds_left: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checked": self.checked,
            "total": self.total,
            "percent": self.percent,
            "rate": round(self.rate) if self.rate is not None else None,
            "seconds_left": self.seconds_left,
        }


def progress_of(run: VerificationRun, now: datetime | None = None) -> Progress:
    total = max(run.total, run.checked)
    percent = 100 if total == 0 else min(100, int(run.checked * 100 / total))
    if run.status != RunStatus.RUNNING.value:
        percent = 100 if run.status == RunStatus.OK.value else percent
    elapsed = ((run.progress_at or now or utcnow()) - run.started_at).total_seconds()
    rate = run.checked / elapsed if run.checked and elapsed > 0 else None
    left = None
    if rate and run.status == RunStatus.RUNNING.value:
        left = int(max(total - run.checked, 0) / rate)
    return Progress(run.status, run.checked, total, percent, rate, left)


# ---- the job ---------------------------------------------------------------------------


def _verify(ctx: JobContext, run_id: int) -> dict[str, Any]:
    session = ctx.session
    total = _head_seq(session)
    session.execute(update(VerificationRun).where(VerificationRun.id == run_id).values(total=total))
    ctx.checkpoint(0, total, {})
    last_write = 0.0

    def progress(checked: int) -> None:
        nonlocal last_write
        if time.monotonic() - last_write < PROGRESS_EVERY and checked < total:
            return
        last_write = time.monotonic()
        session.execute(
            update(VerificationRun)
            .where(VerificationRun.id == run_id)
            .values(checked=checked, progress_at=utcnow())
        )
        ctx.checkpoint(checked, total, {})

    bind = session.get_bind()
    try:
        if isinstance(bind, Connection):  # the tests' single connection
            result = ledger.verify(bind, progress=progress)
        else:
            with bind.connect() as connection:
                result = ledger.verify(connection.execution_options(**READ_ONLY), progress=progress)
    except Exception as exc:
        session.rollback()
        _finish(session, run_id, RunStatus.ERROR, None, problem=f"{type(exc).__name__}: {exc}")
        session.commit()
        raise
    status = RunStatus.OK if result.ok else RunStatus.FAILED
    run = _finish(session, run_id, status, result)
    if not result.ok:
        alert_officers(session, run)
    return {"ok": result.ok, "checked": result.checked, "first_bad_seq": result.first_bad_seq}


def _finish(
    session: Session,
    run_id: int,
    status: RunStatus,
    result: ledger.Verification | None,
    *,
    problem: str | None = None,
) -> VerificationRun:
    run = session.get(VerificationRun, run_id, populate_existing=True)
    assert run is not None
    now = utcnow()
    run.status = status.value
    run.finished_at = now
    run.progress_at = now
    if result is not None:
        run.checked = result.checked
        run.first_bad_seq = result.first_bad_seq
        run.first_bad_event_id = result.first_bad_event_id
        run.problem = result.problem
    else:
        run.problem = problem
    session.flush()
    return run


def alert_officers(session: Session, run: VerificationRun) -> None:
    """Email every data protection officer that the ledger does not verify."""
    officers = session.execute(
        select(Account.email, Account.locale, Account.time_zone).where(
            Account.staff_role == StaffRole.DPO.value
        )
    ).all()
    for email, locale, time_zone in officers:
        send_later(
            email,
            _l("The consent ledger failed its verification"),
            "ledger_alert",
            locale=locale,
            time_zone=time_zone,
            problem=run.problem or "",
            seq=run.first_bad_seq,
            event_id=run.first_bad_event_id or "",
            at=run.finished_at or utcnow(),
        )


@handler(JOB_KIND, max_attempts=1, lease=LEASE)
def verify_ledger_job(ctx: JobContext) -> dict[str, Any]:
    """A verification started from the console."""
    run_id = int(ctx.payload["run_id"])
    return _verify(ctx, run_id)


@handler(SCHEDULED_KIND, max_attempts=1, lease=LEASE)
def scheduled_verification_job(ctx: JobContext) -> dict[str, Any]:
    """The daily verification: a run of its own in the same list."""
    run = VerificationRun(
        started_at=utcnow(),
        started_by_id=None,
        started_by_email=None,
        job_id=ctx.job_id,
        status=RunStatus.RUNNING.value,
        checked=0,
        total=_head_seq(ctx.session),
    )
    ctx.session.add(run)
    ctx.session.flush()
    return _verify(ctx, run.id)
