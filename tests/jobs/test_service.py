"""The job service: enqueue after commit, claims, retries with back-off, the failed state.

The test app runs jobs "immediately" (in the committing thread, right after the commit);
``run_now`` runs one the way a worker does.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.conftest import app_overrides
from vrm_portal import create_app
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.jobs import registry, service
from vrm_portal.jobs.engine import ScheduleError, enqueue_scheduled, parse_cron
from vrm_portal.jobs.models import Job, JobStatus
from vrm_portal.mail import send_later


def _job(db_session: Session, job_id: str) -> Job:
    job = db_session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job


def _make_due(db_session: Session, job_id: str) -> None:
    job = _job(db_session, job_id)
    job.next_attempt_at = utcnow() - timedelta(seconds=1)
    db_session.commit()


def test_a_committed_job_runs_once_and_keeps_no_payload(app: Flask, connection, db_session):
    with app.app_context():
        job_id = service.enqueue(db.session, "jobs.noop", {"secret": "x"})
        db.commit()
    job = _job(db_session, job_id)
    assert job.status == JobStatus.DONE
    assert job.attempts == 1
    assert job.payload is None
    assert job.result == {"attempt": 1}
    assert app.extensions["vrm_jobs"].run_now(job_id).status == "skipped"
    assert _job(db_session, job_id).attempts == 1


def test_a_rolled_back_request_enqueues_nothing_and_sends_nothing(
    database_url, smtp, tmp_path, connection, db_session, mailbox
):
    # Its own app: a route is added, which a shared app that served requests refuses.
    fresh = create_app(app_overrides(database_url, smtp[0], tmp_path))
    db.bind_to_connection(fresh, connection)

    def fails_after_enqueueing() -> str:
        service.enqueue(db.session, "jobs.noop", {"marker": "rolled-back"})
        send_later("eve@example.com", "Should never arrive", "email_in_use")
        raise RuntimeError("crash after enqueueing")

    fresh.add_url_rule("/_test_enqueue_then_fail", "enqueue_then_fail", fails_after_enqueueing)
    try:
        response = fresh.test_client().get("/_test_enqueue_then_fail")
    finally:
        fresh.extensions["vrm_db"].engine.dispose()
    assert response.status_code == 500
    assert db_session.scalars(select(Job)).all() == []
    assert mailbox.to("eve@example.com") == []


def test_a_failing_job_retries_with_back_off_then_fails_visibly(app: Flask, connection, db_session):
    with app.app_context():
        job_id = service.enqueue(db.session, "jobs.noop", {"fail": "SMTP said no"})
        db.commit()
    job = _job(db_session, job_id)
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
    assert job.last_error == "RuntimeError: SMTP said no"
    first_wait = job.next_attempt_at - utcnow()
    assert timedelta(seconds=20) < first_wait <= timedelta(seconds=30)
    # Not due yet: a worker that gets it early leaves it alone.
    assert app.extensions["vrm_jobs"].run_now(job_id).status == "skipped"

    _make_due(db_session, job_id)
    outcome = app.extensions["vrm_jobs"].run_now(job_id)
    assert outcome.status == "retry"
    assert outcome.retry_in == pytest.approx(60)  # doubled

    _make_due(db_session, job_id)
    assert app.extensions["vrm_jobs"].run_now(job_id).status == "failed"  # 3 attempts
    job = _job(db_session, job_id)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 3)
    assert job.finished_at is not None
    assert job.payload == {"fail": "SMTP said no"}  # kept, so "retry" can run it again
    with app.app_context():
        failed = service.failed_jobs(db.session)
        assert [f.id for f in failed] == [job_id]
        assert service.counts(db.session).failed == 1

        assert service.retry(db.session, job_id) is True
        assert service.retry(db.session, "nope") is False
        db.session.commit()
    job = _job(db_session, job_id)
    # retried at once (immediate engine), failing again: the count starts afresh
    assert job.attempts == 1
    assert job.status == JobStatus.QUEUED


def test_a_running_job_is_left_to_its_worker_until_its_lease_ends(
    app: Flask, connection, db_session
):
    job = Job(
        id=service.new_job_id(),
        kind="jobs.noop",
        payload={},
        status=JobStatus.RUNNING.value,
        attempts=1,
        max_attempts=3,
        next_attempt_at=utcnow(),
        lease_until=utcnow() + timedelta(minutes=1),
    )
    db_session.add(job)
    db_session.commit()
    job_id = job.id
    engine = app.extensions["vrm_jobs"]
    assert engine.run_now(job_id).status == "skipped"
    with app.app_context():
        assert service.stalled_job_ids(db.session, now=utcnow()) == []

    # The worker died: once the lease ends, recovery finds it and another worker runs it.
    job.lease_until = utcnow() - timedelta(seconds=1)
    db_session.commit()
    with app.app_context():
        assert service.stalled_job_ids(db.session, now=utcnow()) == [job_id]
    assert engine.run_now(job_id).status == "done"
    assert _job(db_session, job_id).result == {"attempt": 2}


def test_a_job_of_an_unknown_kind_fails_at_once(app: Flask, connection, db_session):
    job = Job(
        id=service.new_job_id(),
        kind="from.a.newer.release",
        payload={},
        status=JobStatus.QUEUED.value,
        attempts=0,
        max_attempts=3,
        next_attempt_at=utcnow(),
    )
    db_session.add(job)
    db_session.commit()
    assert app.extensions["vrm_jobs"].run_now(job.id).status == "failed"
    job = _job(db_session, job.id)
    assert job.status == JobStatus.FAILED
    assert "no handler for job kind 'from.a.newer.release'" in (job.last_error or "")


def test_enqueue_refuses_an_unknown_kind(app: Flask, connection):
    with app.app_context(), pytest.raises(registry.UnknownJobKind):
        service.enqueue(db.session, "no.such.kind")


def test_a_scheduled_run_is_enqueued_once_per_minute_however_many_ask(
    app: Flask, connection, db_session
):
    engine = app.extensions["vrm_jobs"]
    first = enqueue_scheduled(engine, "schedule.expire_consents")
    second = enqueue_scheduled(engine, "schedule.expire_consents")
    assert first is not None
    assert second is None or second == first  # the minute changed in between at worst
    rows = db_session.scalars(select(Job).where(Job.kind == "schedule.expire_consents")).all()
    assert len(rows) in {1, 2}
    assert all(row.status == JobStatus.DONE for row in rows)
    assert rows[0].result == {"expired": 0}


@pytest.mark.parametrize("expression", ["* * * *", "61 * * * *", "a b c d e", "* * * * * *"])
def test_a_bad_schedule_is_refused_with_the_reason(expression: str):
    with pytest.raises(ScheduleError):
        parse_cron(expression)


def test_handlers_checkpoint_progress_that_a_rerun_resumes(app: Flask, connection, db_session):
    seen: list[int] = []

    @registry.handler("tests.counting", max_attempts=2, retry_delay=timedelta(0))
    def counting(ctx: registry.JobContext) -> dict[str, int]:
        start = int(ctx.payload.get("after", 0))
        for done in range(start + 1, 5):
            seen.append(done)
            ctx.checkpoint(done, 4, {"after": done})
            if done == 2 and ctx.attempt == 1:
                raise RuntimeError("crash after the second unit")
        return {"units": len(seen)}

    try:
        with app.app_context():
            job_id = service.enqueue(db.session, "tests.counting")
            db.commit()
        job = _job(db_session, job_id)
        assert (job.status, job.progress_done, job.progress_total) == (JobStatus.QUEUED, 2, 4)
        assert job.payload == {"after": 2}
        _make_due(db_session, job_id)
        assert app.extensions["vrm_jobs"].run_now(job_id).status == "done"
        assert seen == [1, 2, 3, 4]  # units 1 and 2 were not done again
        assert _job(db_session, job_id).progress_done == 4
    finally:
        registry.HANDLERS.pop("tests.counting", None)


def test_an_email_to_an_unusable_address_fails_at_once_without_retries(
    app: Flask, connection, db_session, mailbox
):
    with app.app_context():
        job_id = send_later("bad@example.com\r\nBcc: x@example.com", "Hi", "email_in_use")
        db.commit()
    job = _job(db_session, job_id)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert "cannot build the message" in (job.last_error or "")
    assert mailbox.messages == []


def test_a_checkpoint_after_the_lease_was_taken_over_commits_nothing(
    app: Flask, connection, db_session
):
    seen: list[int] = []

    @registry.handler("tests.slow_batches", max_attempts=2)
    def slow(ctx: registry.JobContext) -> dict[str, int]:
        seen.append(ctx.attempt)
        if ctx.attempt == 1:
            # Meanwhile another worker took the job over (our lease had ended).
            with app.app_context():
                db.session.execute(
                    update(Job).where(Job.id == ctx.job_id).values(attempts=Job.attempts + 1)
                )
                db.session.commit()
        ctx.checkpoint(1, 1, {"after": 1})
        return {"attempt": ctx.attempt}

    try:
        with app.app_context():
            job_id = service.enqueue(db.session, "tests.slow_batches")
            db.commit()
        job = _job(db_session, job_id)
        assert seen == [1]
        assert job.progress_done == 0  # the lost run's checkpoint wrote nothing
        assert job.payload == {}
        assert job.status == JobStatus.RUNNING  # still the other worker's
    finally:
        registry.HANDLERS.pop("tests.slow_batches", None)
