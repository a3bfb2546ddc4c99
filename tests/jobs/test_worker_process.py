"""A real job consumer process (``flask --app wsgi vrm worker``) beside the app.

The database is a scratch one committed for real (not the tests' rolled-back
transaction); the queue is a Huey SQLite file, or the Redis of ``VRM_TEST_JOBS_URL``
(the PostgreSQL pass of CI). Nothing here is mocked: real SMTP, a real webhook receiver.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.conftest import app_overrides, scratch_database
from tests.mailbox import Mailbox
from tests.webhooks.conftest import Receiver
from tests.worker import (
    PROJECT,
    WORKER,
    jobs_url,
    queue_name,
    start_worker,
    stop_worker,
    worker_env,
)
from vrm_portal import create_app, schema
from vrm_portal.accounts import service as accounts
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent import service as consent
from vrm_portal.consent.models import Action, CollectionMethod, ConsentEvent, ConsentState
from vrm_portal.consent.signing import current_notary
from vrm_portal.db import READ_ONLY, create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.extensions import db
from vrm_portal.jobs import service as jobs
from vrm_portal.jobs.models import Job, JobStatus
from vrm_portal.mail import send_later
from vrm_portal.webhooks import service as webhooks


@dataclass
class Portal:
    """The app (enqueues, reads) and how to start and kill its worker processes."""

    app: Flask
    engine: Engine
    env: dict[str, str]
    log: Path
    workers: list[subprocess.Popen[bytes]]

    def start_worker(self) -> subprocess.Popen[bytes]:
        process = start_worker(self.env, self.log)
        self.workers.append(process)
        return process

    def job(self, job_id: str) -> Job:
        # A read-only connection: on SQLite it never waits for a writer.
        with Session(self.engine.execution_options(**READ_ONLY)) as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout}s; worker log:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def portal(database_url: str, smtp: tuple[int, Mailbox], tmp_path: Path) -> Iterator[Portal]:
    smtp_port, _mailbox = smtp
    queue_url = jobs_url(tmp_path)
    with scratch_database(database_url, tmp_path, "worker") as url:
        engine = create_db_engine(url)
        schema.upgrade(engine)
        with Session(engine) as session:
            load_demo_catalogue(session)
            session.commit()
        overrides = app_overrides(url, smtp_port, tmp_path / "instance") | {
            "JOBS_URL": queue_url,
            "JOBS_QUEUE": queue_name(tmp_path),
            "WEBHOOK_ALLOW_LOOPBACK_HTTP": True,
        }
        app = create_app(overrides)
        env = worker_env(
            database_url=url,
            queue_url=queue_url,
            smtp_port=smtp_port,
            instance=tmp_path / "instance",
            receipt_key_file=overrides["RECEIPT_SIGNING_KEY_FILE"],
            queue=overrides["JOBS_QUEUE"],
            JOBS_LEASE_SECONDS="3",
            SCHEDULE_EXPIRE_CONSENTS="* * * * *",
            SCHEDULE_PROCESS_ERASURES="* * * * *",
        )
        running = Portal(app, engine, env, tmp_path / "worker.log", [])
        try:
            yield running
        finally:
            for process in running.workers:
                stop_worker(process)
            app.extensions["vrm_jobs"].close()
            with app.app_context():
                db.engine.dispose()
            engine.dispose()


def test_the_worker_sends_a_queued_email(portal: Portal, mailbox: Mailbox):
    portal.start_worker()
    with portal.app.app_context():
        job_id = send_later("frank@example.com", "Hello from a job", "email_in_use")
        db.commit()
    message = mailbox.wait_for("frank@example.com", timeout=30)
    assert message["Message-ID"] == f"<{job_id}@vrm.invalid>"
    portal.wait(lambda: portal.job(job_id).status == JobStatus.DONE, "the job is done")


def test_a_worker_killed_mid_job_is_replaced_and_the_job_finishes_once(portal: Portal):
    first = portal.start_worker()
    with portal.app.app_context():
        job_id = jobs.enqueue(db.session, "jobs.noop", {"seconds": 1.5})
        db.commit()
    portal.wait(lambda: portal.job(job_id).status == JobStatus.RUNNING, "the job started")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed = portal.job(job_id)
    assert (killed.status, killed.attempts) == (JobStatus.RUNNING, 1)

    portal.start_worker()
    portal.wait(lambda: portal.job(job_id).status == JobStatus.DONE, "the job is done", 40)
    done = portal.job(job_id)
    assert done.attempts == 2
    assert done.result == {"attempt": 2}
    time.sleep(3)  # recovery keeps running every second: nothing runs it again
    assert portal.job(job_id).attempts == 2


def test_consents_expire_and_webhooks_go_out_on_schedule(portal: Portal):
    receiver = Receiver()
    try:
        with portal.app.app_context():
            account = accounts.register_account(
                db.session,
                "grace@example.com",
                "correct horse battery staple",
                verification_ttl=timedelta(hours=1),
            ).account
            account.email_verified_at = utcnow()
            purpose = consent.find_purpose(db.session, "aurore-automobiles", "sms-offers")
            consent.grant(
                db.session,
                current_notary(),
                account,
                purpose,
                shown_version=purpose.current_version,
                change=consent.Change(CollectionMethod.PORTAL, "en", utcnow()),
            )
            brand = brand_by_slug(db.session, "aurore-automobiles")
            assert brand is not None
            webhooks.register_endpoint(
                db.session, brand, receiver.url(), allow_loopback_http=True, now=utcnow()
            )
            db.session.execute(
                update(ConsentState)
                .where(ConsentState.account_id == account.id)
                .values(expires_at=utcnow() - timedelta(minutes=1))
            )
            db.commit()
            subject_key = account.subject_key

        portal.start_worker()

        def expired() -> bool:
            with Session(portal.engine.execution_options(**READ_ONLY)) as session:
                return (
                    session.scalars(
                        select(ConsentEvent).where(
                            ConsentEvent.subject_key == subject_key,
                            ConsentEvent.action == Action.EXPIRED,
                        )
                    ).first()
                    is not None
                )

        portal.wait(expired, "the consent expired on schedule")
        portal.wait(
            lambda: any(b'"consent.expired"' in r.body for r in receiver.received),
            "the brand's webhook received consent.expired",
        )
        kinds = [r.body for r in receiver.received]
        assert sum(b'"consent.expired"' in body for body in kinds) == 1
    finally:
        receiver.down()


def test_the_worker_refuses_to_run_in_immediate_mode(tmp_path: Path):
    env = {
        **os.environ,
        "VRM_ENV": "development",
        "VRM_JOBS_URL": "immediate",
        "VRM_INSTANCE_PATH": str(tmp_path),
        "VRM_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }
    result = subprocess.run(WORKER, cwd=PROJECT, env=env, capture_output=True, timeout=60)
    assert result.returncode != 0
    output = (result.stdout + result.stderr).decode()
    assert "VRM_JOBS_URL is 'immediate'" in output
    assert "Traceback" not in output
