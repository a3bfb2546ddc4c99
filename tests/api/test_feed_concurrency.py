"""The change feed under concurrent writers: a reader following it with its cursor while
consent and interest changes commit in parallel sees every entry once, in order.

Writers and the reader are threads with their own connections on a scratch database.
On PostgreSQL they really run in parallel (the brand row's lock orders the entries); on
SQLite writers serialise through ``BEGIN IMMEDIATE`` and the reader reads in WAL mode.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import scratch_database
from vrm_portal import schema
from vrm_portal.accounts.models import Account
from vrm_portal.api.projection import changes_page
from vrm_portal.brands.models import Brand, BrandChange
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change, Notary
from vrm_portal.db import READ_ONLY, create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.interests import service as interests

WRITERS = 8
CHANGES_PER_WRITER = 25
BRAND = "aurore-automobiles"
PURPOSES = ["analytics", "partner-sharing", "sms-offers", "postal-offers"]
TOPICS = ["electric-vehicles", "maintenance-offers", "new-models", "events"]


@pytest.fixture
def feed_engine(database_url, tmp_path) -> Iterator[Engine]:
    with scratch_database(database_url, tmp_path, "feed") as url:
        engine = create_db_engine(url, pool_size=WRITERS + 2, max_overflow=WRITERS)
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


def test_a_reader_following_the_feed_never_skips_nor_repeats(feed_engine: Engine, notary: Notary):
    engine = feed_engine
    done = threading.Event()
    start = threading.Barrier(WRITERS + 1)
    with Session(engine) as session:
        brand = brand_by_slug(session, BRAND)
        assert brand is not None
        brand_id = brand.id

    def writer(index: int) -> None:
        rng = random.Random(index)
        start.wait(timeout=60)
        for _ in range(CHANGES_PER_WRITER):
            with Session(engine) as session:
                account = session.scalar(
                    select(Account).where(Account.email == f"writer{index}@example.com")
                )
                assert account is not None
                change = Change(CollectionMethod.IMPORT, "en", utcnow())
                roll = rng.random()
                if roll < 0.8:
                    purpose = service.find_purpose(session, BRAND, rng.choice(PURPOSES))
                    if roll < 0.45:
                        service.grant(
                            session,
                            notary,
                            account,
                            purpose,
                            shown_version=purpose.current_version,
                            change=change,
                        )
                    else:
                        service.withdraw(session, notary, account, purpose, change=change)
                else:
                    brand_row = session.get(Brand, brand_id)
                    assert brand_row is not None
                    chosen = set(rng.sample(TOPICS, rng.randint(0, 2)))
                    interests.set_interests(session, account, brand_row, chosen)
                session.commit()

    seen: list[int] = []
    reads_during_writes = 0

    def reader() -> None:
        nonlocal reads_during_writes
        after = 0
        start.wait(timeout=60)
        while True:
            finished = done.is_set()
            with (
                engine.connect() as conn,
                Session(bind=conn.execution_options(**READ_ONLY)) as session,
            ):
                page = changes_page(session, brand_id, after, 7)
            seen.extend(item["seq"] for item in page.items)
            after = page.next_cursor
            time.sleep(0.002)  # a poller, not a busy loop: leave the GIL to the writers
            if not finished:
                reads_during_writes += 1
            elif not page.items:
                return

    with ThreadPoolExecutor(max_workers=WRITERS + 1) as pool:
        reading = pool.submit(reader)
        writing = [pool.submit(writer, n) for n in range(WRITERS)]
        for future in writing:
            future.result(timeout=300)
        done.set()
        reading.result(timeout=300)

    with Session(engine) as session:
        total = session.scalar(
            select(func.count()).select_from(BrandChange).where(BrandChange.brand_id == brand_id)
        )
        feed_seq = session.scalar(select(Brand.feed_seq).where(Brand.id == brand_id))
    assert total
    assert total > WRITERS
    assert seen == list(range(1, total + 1))  # every entry once, in order, no gap
    assert feed_seq == total
    assert reads_during_writes > 1
