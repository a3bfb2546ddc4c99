"""The buffered access recorder (production mode): reads are recorded off the request
path, in batches, and nothing is lost when the database refuses a batch for a while."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, func, select

from tests.conftest import scratch_database
from vrm_portal import schema
from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.history.models import AccessKind, AccessRecord
from vrm_portal.history.recorder import AccessRecorder, access_row


def _row(brand_id: int, n: int) -> dict:
    return access_row(
        brand_id=brand_id,
        client_pk=None,
        kind=AccessKind.CONSUMER,
        scope="consumers:read",
        first_id=n,
        last_id=n,
        count=1,
        fields=["consents"],
        now=utcnow(),
    )


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(AccessRecord))


def test_records_are_written_in_batches_in_the_background(database_url, tmp_path):
    from sqlalchemy.orm import Session

    with scratch_database(database_url, tmp_path, "recorder") as url:
        engine = create_db_engine(url)
        try:
            schema.upgrade(engine)
            with Session(engine) as session:
                load_demo_catalogue(session)
                session.commit()
                brand_id = session.scalar(select(func.min(Brand.id)))
            recorder = AccessRecorder(engine, interval=30, batch=5)
            for n in range(4):
                recorder.add(_row(brand_id, n))
            assert recorder.pending() == 4
            assert _count(engine) == 0
            recorder.add(_row(brand_id, 4))  # the fifth wakes the writer at once
            deadline = time.monotonic() + 10
            while _count(engine) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _count(engine) == 5
            assert recorder.pending() == 0
            recorder.add(_row(brand_id, 5))
            assert recorder.flush() == 1  # what process exit does (atexit)
            assert _count(engine) == 6
        finally:
            engine.dispose()


def test_a_refused_batch_is_kept_and_written_later(tmp_path):
    # SQLite without foreign keys: the rows name a brand that does not exist.
    missing = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")  # no tables yet
    recorder = AccessRecorder(missing, interval=30, batch=1000)
    recorder.add(_row(1, 1))
    recorder.add(_row(1, 2))
    assert recorder.flush() == 0
    assert recorder.pending() == 2  # kept for the next tick
    schema.upgrade(missing)
    assert recorder.flush() == 2
    assert _count(missing) == 2
