"""The ledger sequencer in a real worker process, killed with SIGKILL while it integrates
and started again: nothing lost, nothing integrated twice.

The app (worker sequencer: its jobs go to a real queue) records a few hundred consent
changes while no worker runs: states, receipts and intake rows, nothing in the ledger. A
worker integrating them ten per transaction is then killed as soon as some, not all,
are in the ledger. Whatever the instant of the kill, a batch is one transaction: what is
in the ledger then is exactly a prefix, with its receipts and feed entries, and the rest
still waits. A second worker finishes; everything is then in the ledger once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import app_overrides, scratch_database
from tests.mailbox import Mailbox
from tests.worker import jobs_url, queue_name, start_worker, stop_worker, worker_env
from vrm_portal import create_app, schema
from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import BrandChange
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, sequencer
from vrm_portal.consent import service as consent
from vrm_portal.consent.models import CollectionMethod, ConsentEvent, ConsentReceipt, EventIntake
from vrm_portal.consent.signing import current_notary
from vrm_portal.db import READ_ONLY, create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.extensions import db
from vrm_portal.jobs.engine import SEQUENCE_PENDING_KEY, STALE_NUDGE_SECONDS
from vrm_portal.log.service import verify_log

ACCOUNTS = 20
CHANGES_PER_ACCOUNT = 20
TOTAL = ACCOUNTS * CHANGES_PER_ACCOUNT


@pytest.fixture
def portal(
    database_url: str, smtp: tuple[int, Mailbox], tmp_path: Path
) -> Iterator[tuple[Flask, Engine, dict[str, str]]]:
    smtp_port, _mailbox = smtp
    queue_url = jobs_url(tmp_path)
    with scratch_database(database_url, tmp_path, "sequencer") as url:
        engine = create_db_engine(url)
        schema.upgrade(engine)
        with Session(engine) as session:
            load_demo_catalogue(session)
            for n in range(ACCOUNTS):
                session.add(Account(email=f"c{n}@example.com"))
            session.commit()
        overrides = app_overrides(url, smtp_port, tmp_path / "instance") | {
            "JOBS_URL": queue_url,
            "JOBS_QUEUE": queue_name(tmp_path),
            "LEDGER_SEQUENCER": "worker",
        }
        app = create_app(overrides)
        env = worker_env(
            database_url=url,
            queue_url=queue_url,
            smtp_port=smtp_port,
            instance=tmp_path / "instance",
            receipt_key_file=overrides["RECEIPT_SIGNING_KEY_FILE"],
            queue=overrides["JOBS_QUEUE"],
            LEDGER_SEQUENCER="worker",
            LEDGER_SEQUENCER_BATCH="10",
            SCHEDULE_EXPIRE_CONSENTS="off",
            SCHEDULE_PROCESS_ERASURES="off",
        )
        try:
            yield app, engine, env
        finally:
            app.extensions["vrm_jobs"].close()
            with app.app_context():
                db.engine.dispose()
            engine.dispose()


def _count(engine: Engine, model: type) -> int:
    with Session(engine.execution_options(**READ_ONLY)) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _wait(condition: Callable[[], bool], what: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)


def _consistent(engine: Engine) -> int:
    """The ledger is a verified prefix of the changes, each integrated event has its
    receipt's position and its feed entry, and the rest waits: returns the prefix."""
    with engine.connect() as conn:
        assert ledger.verify(conn).ok
        assert verify_log(conn).ok
    with Session(engine) as session:
        events = session.scalars(select(ConsentEvent.event_id)).all()
        waiting = session.scalars(select(EventIntake.event_id)).all()
        placed = session.scalar(
            select(func.count())
            .select_from(ConsentReceipt)
            .where(ConsentReceipt.event_seq.is_not(None))
        )
        feed = session.scalar(select(func.count()).select_from(BrandChange))
    assert len(set(events)) == len(events)  # nothing integrated twice
    assert not set(events) & set(waiting)
    assert len(events) + len(waiting) == TOTAL  # nothing lost
    assert placed == len(events)
    assert feed == len(events)
    return len(events)


def test_a_sequencer_killed_mid_batch_loses_nothing_and_repeats_nothing(portal, tmp_path):
    app, engine, env = portal
    assert app.config["LEDGER_SEQUENCER_MODE"] == sequencer.WORKER
    with app.app_context():
        notary = current_notary()
        purpose = consent.find_purpose(db.session, "aurore-automobiles", "analytics")
        accounts = db.session.scalars(select(Account).order_by(Account.id)).all()
        for round_ in range(CHANGES_PER_ACCOUNT):
            for account in accounts:
                change = consent.Change(CollectionMethod.IMPORT, "en", utcnow())
                if round_ % 2 == 0:
                    consent.grant(
                        db.session, notary, account, purpose, shown_version=1, change=change
                    )
                else:
                    consent.withdraw(db.session, notary, account, purpose, change=change)
            db.session.commit()
    assert _count(engine, EventIntake) == TOTAL
    assert _count(engine, ConsentEvent) == 0

    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        _wait(lambda: _count(engine, ConsentEvent) > 0, "the sequencer started", log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=15)
    finally:
        stop_worker(first)
    prefix = _consistent(engine)
    assert 0 < prefix < TOTAL, "the worker finished before it could be killed"

    second = start_worker(env, log)
    try:
        _wait(lambda: _count(engine, EventIntake) == 0, "the rest integrated", log)
    finally:
        stop_worker(second)
    assert _consistent(engine) == TOTAL


def test_nudges_wait_in_the_queue_as_one_sequencer_run(portal) -> None:
    """Each commit nudges the sequencer, but one waiting run serves them all; a run that
    starts clears the mark (so later commits are nudged again), and a mark left by a run
    lost with its worker is replaced once stale."""
    app, _engine, _env = portal
    engine = app.extensions["vrm_jobs"]
    huey = engine.huey
    huey.delete(SEQUENCE_PENDING_KEY)
    before = huey.pending_count()
    for _ in range(5):
        engine.nudge_sequencer()
    assert huey.pending_count() == before + 1

    huey.delete(SEQUENCE_PENDING_KEY)  # what a sequencer run does as it starts
    engine.nudge_sequencer()
    engine.nudge_sequencer()
    assert huey.pending_count() == before + 2

    huey.put(SEQUENCE_PENDING_KEY, time.time() - STALE_NUDGE_SECONDS - 1)
    engine.nudge_sequencer()
    assert huey.pending_count() == before + 3
