"""16 writers, one sequencer, two feed readers, at the same time, on a scratch database.

Writers make consent changes with a worker sequencer (``LEDGER_SEQUENCER=worker``): no
ledger head lock, no brand row lock on their path. A sequencer thread integrates while
they write; a reader per brand follows the brand's feed with its cursor. Afterwards the
ledger's chain and tree verify, ``seq`` has no gap, every recorded change has exactly one
event, one receipt and one feed entry for its brand, and each reader saw every entry of
its brand once, in order. On PostgreSQL the writers really run in parallel; on SQLite
they serialise on ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import scratch_database
from vrm_portal import schema
from vrm_portal.accounts.models import Account
from vrm_portal.api.projection import changes_page
from vrm_portal.brands.models import BrandChange
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, sequencer, service
from vrm_portal.consent.models import (
    CollectionMethod,
    ConsentEvent,
    ConsentReceipt,
    EventIntake,
)
from vrm_portal.consent.service import Change, Notary, Outcome
from vrm_portal.db import READ_ONLY, create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.log.service import verify_log

WRITERS = 16
CHANGES_PER_WRITER = 12
BRANDS = ("aurore-automobiles", "maison-berlingot")
PURPOSES = ("analytics", "partner-sharing", "sms-offers")


@pytest.fixture
def write_engine(database_url, tmp_path) -> Iterator[Engine]:
    with scratch_database(database_url, tmp_path, "seq") as url:
        engine = create_db_engine(url, pool_size=WRITERS + 4, max_overflow=WRITERS)
        try:
            schema.upgrade(engine)
            with Session(engine) as session:
                load_demo_catalogue(session)
                for n in range(WRITERS):
                    session.add(Account(email=f"writer{n}@example.com"))
                session.commit()
            yield engine
        finally:
            engine.dispose()


def test_sixteen_writers_one_sequencer_and_feed_readers(
    app: Flask, write_engine: Engine, notary: Notary
):
    engine = write_engine
    app.config["LEDGER_SEQUENCER_MODE"] = sequencer.WORKER
    try:
        _run(app, engine, notary)
    finally:
        app.config["LEDGER_SEQUENCER_MODE"] = sequencer.INLINE


def _run(app: Flask, engine: Engine, notary: Notary) -> None:
    start = threading.Barrier(WRITERS + 1 + len(BRANDS) + 1)
    writers_done = threading.Event()
    sequencer_done = threading.Event()
    recorded: Counter[str] = Counter()
    receipts: list[str] = []
    lock = threading.Lock()
    with Session(engine) as session:
        brand_ids = {}
        for slug in BRANDS:
            brand = brand_by_slug(session, slug)
            assert brand is not None
            brand_ids[slug] = brand.id

    def writer(index: int) -> None:
        rng = random.Random(index)
        with app.app_context():
            start.wait(timeout=60)
            for _ in range(CHANGES_PER_WRITER):
                with Session(engine) as session:
                    account = session.scalar(
                        select(Account).where(Account.email == f"writer{index}@example.com")
                    )
                    assert account is not None
                    brand = rng.choice(BRANDS)
                    purpose = service.find_purpose(session, brand, rng.choice(PURPOSES))
                    change = Change(CollectionMethod.IMPORT, "en", utcnow())
                    if rng.random() < 0.6:
                        result = service.grant(
                            session,
                            notary,
                            account,
                            purpose,
                            shown_version=purpose.current_version,
                            change=change,
                        )
                    else:
                        result = service.withdraw(session, notary, account, purpose, change=change)
                    session.commit()
                if result.outcome is Outcome.RECORDED:
                    assert result.receipt is not None
                    assert result.receipt.event_seq is None  # placed later, by the sequencer
                    with lock:
                        recorded[brand] += 1
                        receipts.append(result.receipt.receipt_id)

    def sequence() -> None:
        with app.app_context():
            start.wait(timeout=60)
            while True:
                finished = writers_done.is_set()
                with Session(engine) as session:
                    sequencer.integrate_all(lambda: session, limit=25)
                if finished:
                    sequencer_done.set()
                    return
                time.sleep(0.005)

    seen: dict[str, list[int]] = {slug: [] for slug in BRANDS}
    reads_during_writes = Counter[str]()

    def reader(slug: str) -> None:
        after = 0
        start.wait(timeout=60)
        while True:
            finished = sequencer_done.is_set()
            with (
                engine.connect() as conn,
                Session(bind=conn.execution_options(**READ_ONLY)) as session,
            ):
                page = changes_page(session, brand_ids[slug], after, 7)
            seen[slug].extend(item["seq"] for item in page.items)
            after = page.next_cursor
            time.sleep(0.002)
            if not finished:
                reads_during_writes[slug] += 1
            elif not page.items:
                return

    with ThreadPoolExecutor(max_workers=WRITERS + len(BRANDS) + 1) as pool:
        readers = [pool.submit(reader, slug) for slug in BRANDS]
        sequencing = pool.submit(sequence)
        writing = [pool.submit(writer, n) for n in range(WRITERS)]
        start.wait(timeout=60)
        for future in writing:
            future.result(timeout=600)
        writers_done.set()
        sequencing.result(timeout=600)
        for future in readers:
            future.result(timeout=600)

    total = sum(recorded.values())
    assert total > WRITERS
    with engine.connect() as conn:
        assert ledger.verify(conn).ok  # chain: gapless seq, hashes, links
        assert verify_log(conn).ok  # tree: every leaf, every checkpoint
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(EventIntake)) == 0
        events = session.execute(select(ConsentEvent.seq, ConsentEvent.event_id)).all()
        assert sorted(seq for seq, _id in events) == list(range(1, total + 1))
        assert len({event_id for _seq, event_id in events}) == total
        stored = session.execute(select(ConsentReceipt.receipt_id, ConsentReceipt.event_seq)).all()
        assert sorted(r for r, _seq in stored) == sorted(receipts)
        assert sorted(seq for _r, seq in stored) == list(range(1, total + 1))
        for slug in BRANDS:
            entries = session.scalar(
                select(func.count())
                .select_from(BrandChange)
                .where(BrandChange.brand_id == brand_ids[slug])
            )
            assert entries == recorded[slug]
            assert seen[slug] == list(range(1, recorded[slug] + 1))  # once, in order
    assert sum(reads_during_writes.values()) > len(BRANDS)
