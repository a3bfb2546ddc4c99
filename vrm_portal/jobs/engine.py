"""The job engine: Huey, bound to the app.

- ``VRM_JOBS_URL`` picks Huey's storage: ``sqlite:///path`` (the embedded default,
  ``instance/jobs.sqlite3``: no server needed), ``redis://host:port/db`` (production;
  several consumers on several machines share it), or ``immediate`` (the tests: a job
  runs in the committing thread, right after the commit).
- One Huey task, ``vrm.run``, runs a ``jobs`` row by id (``jobs/service.py``); the
  periodic tasks replace cron (``SCHEDULES``); ``vrm.webhooks`` sends the webhook outbox
  when a change was committed for a brand with endpoints.
- ``vrm worker`` (``jobs/commands.py``) runs Huey's own consumer.

Each app gets its own Huey instance (``app.extensions["vrm_jobs"]``), so two apps in one
process (the tests) never share a queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import Flask
from huey import Huey, crontab
from huey.consumer import Consumer, Scheduler
from huey.exceptions import RetryTask
from huey.storage import RedisStorage, SqliteStorage
from redis import ConnectionPool
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vrm_portal.clock import utcnow
from vrm_portal.jobs import registry, service

log = logging.getLogger(__name__)


class ScheduleError(ValueError):
    """A ``VRM_SCHEDULE_*`` setting is not a five-field cron expression."""


def parse_cron(expression: str) -> Callable[[Any], bool]:
    """``"17 3 * * *"`` (minute hour day month weekday) as Huey's crontab test."""
    fields = expression.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"{expression!r} is not a cron expression: write five fields, "
            "minute hour day-of-month month day-of-week (for instance '17 3 * * *')"
        )
    minute, hour, day, month, day_of_week = fields
    try:
        test: Callable[[Any], bool] = crontab(minute, hour, day, month, day_of_week)
    except ValueError as exc:
        raise ScheduleError(f"{expression!r}: {exc}") from exc
    return test


#: The work that used to need cron: schedule setting -> job kind it enqueues.
SCHEDULES: dict[str, str] = {
    "EXPIRE_CONSENTS": "schedule.expire_consents",
    "PROCESS_ERASURES": "schedule.process_erasures",
    "DELIVER_WEBHOOKS": "schedule.deliver_webhooks",
    "REMINDERS": "schedule.reminders",
    "CHECKPOINT": "schedule.checkpoint",
    "VERIFY_LEDGER": "schedule.verify_ledger",
    "STATISTICS_ROLLUP": "schedule.statistics_rollup",
}


@dataclass
class JobEngine:
    """The app's Huey instance and how the rest of the portal talks to it."""

    app: Flask
    huey: Huey
    run_task: Any
    webhooks_task: Any
    #: Integrates committed consent events into the ledger (``consent/sequencer.py``).
    sequencer_task: Any
    #: Sends one email (the mail backend); the tests may wrap it.
    send: Callable[[EmailMessage], None]

    @property
    def lease(self) -> timedelta | None:
        seconds = int(self.app.config["JOBS_LEASE_SECONDS"])
        return timedelta(seconds=seconds) if seconds > 0 else None

    @property
    def immediate(self) -> bool:
        return bool(self.huey.immediate)

    def dispatch(self, job_id: str, delay: float | None = None) -> None:
        """Hand a committed job to the engine (now, or after ``delay`` seconds)."""
        if delay:
            self.run_task.schedule(args=(job_id,), delay=delay)
        else:
            self.run_task(job_id)

    def nudge_webhooks(self) -> None:
        """A change for a brand with webhook endpoints was committed: send it soon."""
        self.webhooks_task()

    def nudge_sequencer(self) -> None:
        """A consent change was committed: integrate its event soon.

        At most one sequencer run waits in the queue: a run integrates everything
        committed before it starts, so one waiting run serves every nudge before it. The
        run clears the mark as it starts (``sequence`` below), before it reads the
        intake, so a change committed after that read is nudged again. A mark older than
        ``STALE_NUDGE_SECONDS`` (its run was lost with a killed worker) is replaced.
        """
        now = time.time()
        if not self.huey.put_if_empty(SEQUENCE_PENDING_KEY, now):
            marked = self.huey.get(SEQUENCE_PENDING_KEY, peek=True)
            if isinstance(marked, int | float) and now - marked < STALE_NUDGE_SECONDS:
                return
            self.huey.put(SEQUENCE_PENDING_KEY, now)
        self.sequencer_task()

    def run_now(self, job_id: str) -> service.Outcome:
        """Run one job in this thread (CLI, tests): same path as a worker."""
        from vrm_portal.extensions import db

        with self.app.app_context():
            return service.run_job(lambda: db.session, job_id, self.send, lease=self.lease)

    def close(self) -> None:
        """Release the queue's connections (a process that keeps running, e.g. tests)."""
        storage = self.huey.storage
        pool = getattr(storage, "pool", None)
        if pool is not None:  # Redis
            pool.disconnect()
        storage.close()

    def consumer(self, *, workers: int, periodic: bool = True) -> Consumer:
        tick = int(self.app.config["JOBS_TICK_SECONDS"])

        class TickingScheduler(Scheduler):  # type: ignore[misc]
            periodic_task_seconds = tick

        class PortalConsumer(Consumer):  # type: ignore[misc]
            scheduler_class = TickingScheduler

        return PortalConsumer(
            self.huey,
            workers=workers,
            worker_type="thread",
            periodic=periodic,
            scheduler_interval=1,
            # An idle worker polls at most every second (Huey's default backs off to 10 s,
            # which would hold a password-reset email that long after a quiet spell).
            max_delay=1.0,
            check_worker_health=True,
        )


#: Seconds a Redis queue may take to connect or answer (see ``_storage_settings``).
REDIS_TIMEOUT_SECONDS = 3


def _storage_settings(url: str) -> dict[str, Any]:
    if url == "immediate":
        return {"immediate": True}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return {"storage_class": SqliteStorage, "filename": str(path)}
    if url.startswith(("redis://", "rediss://", "unix://")):
        # A Redis that hangs (partitioned, stuck) must not hold a request's hand-over after
        # its commit, nor a worker, for ever: give up after a few seconds (the job row stays
        # queued and the recovery pass hands it over later). The consumer's blocking read
        # waits 1 s, well within. Settings in the URL's query string win.
        pool = ConnectionPool.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        return {"storage_class": RedisStorage, "connection_pool": pool}
    raise ScheduleError(
        f"VRM_JOBS_URL {url!r}: use sqlite:///<file>, redis://host:port/db or immediate"
    )


def init_app(app: Flask) -> None:
    """Create the app's Huey instance, its tasks and schedules; hook the session events."""
    from vrm_portal.extensions import db
    from vrm_portal.jobs import handlers  # noqa: F401  (registers every job kind)
    from vrm_portal.mail import deliver

    settings = _storage_settings(app.config["JOBS_URL"])
    huey = Huey(app.config["JOBS_QUEUE"], results=False, utc=True, **settings)

    def send(message: EmailMessage) -> None:
        with app.app_context():
            deliver(message)

    def run(job_id: str) -> None:
        with app.app_context():
            outcome = service.run_job(lambda: db.session, job_id, engine.send, lease=engine.lease)
        if outcome.status == "retry":
            raise RetryTask(delay=outcome.retry_in)

    def webhooks() -> None:
        from vrm_portal.webhooks import jobs as webhook_jobs

        with app.app_context():
            webhook_jobs.deliver_pass()

    def sequence() -> None:
        from vrm_portal.consent import sequencer

        huey.delete(SEQUENCE_PENDING_KEY)  # before reading the intake: see nudge_sequencer
        with app.app_context(), db.sessionmaker() as session:
            sequencer.integrate_all(lambda: session, limit=app.config["LEDGER_SEQUENCER_BATCH"])

    # Huey's decorators are untyped: applied as calls, their tasks are ``Any``.
    run_task = huey.task(name="vrm.run", retries=3, retry_delay=10)(run)
    webhooks_task = huey.task(name="vrm.webhooks")(huey.lock_task("vrm-webhooks")(webhooks))
    # No Huey lock: the ledger head's row lock lets one sequencer integrate at a time, and
    # a run that finds nothing waiting costs one read, so no nudge is ever lost.
    sequencer_task = huey.task(name="vrm.sequence")(sequence)
    engine = JobEngine(
        app=app,
        huey=huey,
        run_task=run_task,
        webhooks_task=webhooks_task,
        sequencer_task=sequencer_task,
        send=send,
    )
    if app.config["LEDGER_SEQUENCER_MODE"] == "worker":
        # The sweep behind the nudges: every tick (VRM_JOBS_TICK_SECONDS).
        huey.periodic_task(lambda _moment: True, name="vrm.sequence-sweep")(sequence)

        def sequence_at_start() -> None:
            # A worker killed mid-run took the one queued run with it (the nudges wait
            # as one run): a starting worker queues a run, not waiting for the tick.
            huey.delete(SEQUENCE_PENDING_KEY)
            sequencer_task()

        huey.on_startup()(sequence_at_start)

    for setting, kind in SCHEDULES.items():
        _register_schedule(engine, app.config[f"SCHEDULE_{setting}"], kind)
    recover_test = parse_cron("* * * * *")

    def recover() -> None:
        recover_stalled(engine)

    huey.periodic_task(recover_test, name="vrm.recover")(recover)
    huey.on_startup()(recover)

    app.extensions["vrm_jobs"] = engine


def _register_schedule(engine: JobEngine, expression: str, kind: str) -> None:
    if expression in {"", "off"}:
        return
    test = parse_cron(expression)

    def scheduled() -> None:
        enqueue_scheduled(engine, kind)

    engine.huey.periodic_task(test, name=f"vrm.{kind}")(scheduled)


def enqueue_scheduled(engine: JobEngine, kind: str) -> str | None:
    """Enqueue this minute's run of a scheduled job, once however many consumers ask:
    the job id names the minute, so a second consumer's insert is refused."""
    from vrm_portal.extensions import db
    from vrm_portal.jobs.models import Job, JobStatus

    now = utcnow().replace(second=0, microsecond=0)
    job_id = f"s{now:%Y%m%d%H%M}-{kind.removeprefix('schedule.')}"[:32]
    with engine.app.app_context():
        session = db.sessionmaker()
        try:
            session.add(
                Job(
                    id=job_id,
                    kind=kind,
                    payload={},
                    status=JobStatus.QUEUED.value,
                    attempts=0,
                    max_attempts=registry.kind(kind).max_attempts,
                    created_at=utcnow(),
                    next_attempt_at=utcnow(),
                )
            )
            session.commit()
        except IntegrityError:
            session.rollback()
            return None
        finally:
            session.close()
        engine.dispatch(job_id)
    return job_id


def recover_stalled(engine: JobEngine) -> int:
    """Hand over again the jobs whose worker died or whose hand-over was lost."""
    from vrm_portal.extensions import db

    with engine.app.app_context(), db.sessionmaker() as session:
        ids = service.stalled_job_ids(session, now=utcnow())
        session.rollback()
    for job_id in ids:
        engine.dispatch(job_id)
    if ids:
        log.info("recovered %d stalled job(s)", len(ids))
    return len(ids)


# ---- session events: hand jobs over only after commit -----------------------------


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    service.dispatch_committed(session)
    if session.info.pop(SEQUENCER_KEY, False):
        _nudge_sequencer()
    if session.info.pop(WEBHOOKS_KEY, False):
        _nudge_webhooks()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    service.forget_rolled_back(session)
    session.info.pop(WEBHOOKS_KEY, None)
    session.info.pop(SEQUENCER_KEY, None)


#: ``session.info`` flag: the transaction queued webhook deliveries.
WEBHOOKS_KEY = "vrm_webhooks_due"


def note_webhooks_due(session: Session) -> None:
    session.info[WEBHOOKS_KEY] = True


#: Huey key marking that a sequencer run is queued (``JobEngine.nudge_sequencer``).
SEQUENCE_PENDING_KEY = "vrm-sequence-pending"
#: A mark this old is taken for a run lost with its worker, and replaced.
STALE_NUDGE_SECONDS = 5.0

#: ``session.info`` flag: the transaction wrote consent events for the sequencer.
SEQUENCER_KEY = "vrm_sequencer_due"


def note_sequencer_due(session: Session) -> None:
    session.info[SEQUENCER_KEY] = True


def _nudge_sequencer() -> None:
    from flask import current_app, has_app_context

    if not has_app_context() or "vrm_jobs" not in current_app.extensions:
        return
    engine: JobEngine = current_app.extensions["vrm_jobs"]
    if engine.immediate:
        return  # immediate (tests): the tests run the sequencer themselves
    try:
        engine.nudge_sequencer()
    except Exception:
        log.exception("could not nudge the ledger sequencer; its sweep will integrate")


def _nudge_webhooks() -> None:
    from flask import current_app, has_app_context

    if not has_app_context() or "vrm_jobs" not in current_app.extensions:
        return
    engine: JobEngine = current_app.extensions["vrm_jobs"]
    if engine.immediate:
        return  # the tests run the webhook worker themselves
    try:
        engine.nudge_webhooks()
    except Exception:
        log.exception("could not nudge the webhook worker; its minute sweep will send")
