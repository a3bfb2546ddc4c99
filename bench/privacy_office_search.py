"""Privacy office console benchmark: searching 1,000,000 consent events.

Run (``make bench-office``)::

    .venv/bin/python bench/privacy_office_search.py                      # SQLite, /tmp file
    .venv/bin/python bench/privacy_office_search.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/vrm_office_bench

The database is (re)built unless ``--reuse`` is given: migrated with ``schema.upgrade``,
then ``--events`` events are bulk-inserted without the service (a valid hash chain,
documents built with ``NewEvent.document``; COPY on PostgreSQL, ``executemany`` on
SQLite): 50,000 consumers, 10 brands of 6 purposes, a year of history, methods and
actions in realistic proportions (about 3 % GPC withdrawals).

Measured with ``privacy_office.search.search`` (the page's query plus its total count),
median of ``--repeat`` runs each: the first page, a page deep in the results (the page
whose cursor is the middle of the results) and the last page, for a search by subject
key, by brand + purpose + a 3-month range, and by collection method (GPC signal); then
``privacy_office.stats.compute`` over 12 months (one brand, and all brands), and the CSV
export of every event to ``/dev/null`` in a child process (time and peak RSS, against an
export of the first 100,000 events: flat memory means both peak alike).

Targets (issue 13): every page under 100 ms on PostgreSQL, the last page at most 1.5 times
the first.
"""

# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import argparse
import hashlib
import multiprocessing
import random
import resource
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from vrm_portal import schema
from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentEvent, LedgerHead
from vrm_portal.db import create_db_engine
from vrm_portal.privacy_office import search, stats
from vrm_portal.privacy_office.search import LogFilters

SQLITE_DEFAULT = "sqlite:////tmp/vrm_office_bench.sqlite3"
BRANDS = [f"brand-{i:02d}" for i in range(10)]
PURPOSES = [
    "email-offers",
    "sms-offers",
    "personalised-offers",
    "partner-sharing",
    "analytics",
    "postal-offers",
]
START = datetime(2025, 12, 1, tzinfo=UTC)
YEAR = timedelta(days=365)


def _event_kind(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.55:
        return "granted", "portal"
    if roll < 0.65:
        return "granted", "email-confirmation"
    if roll < 0.85:
        return "withdrawn", "portal"
    if roll < 0.88:
        return "withdrawn", "gpc-signal"
    if roll < 0.98:
        return "expired", "expiry"
    return "withdrawn", "erasure"


COLUMNS = "seq, event_id, subject_key, brand_slug, purpose_key, action, occurred_at, body, hash"


def _secondary_indexes(engine: Engine) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the ledger's secondary indexes (not the keys)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = "
                    "'consent_events' AND indexdef NOT LIKE 'CREATE UNIQUE%'"
                )
            ).all()
        else:
            rows = conn.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                    "tbl_name = 'consent_events' AND sql IS NOT NULL"
                )
            ).all()
    return [(str(name), str(sql)) for name, sql in rows]


def build(engine: Engine, events: int, seed: int = 13) -> None:
    """Migrate, then bulk-load ``events`` chained events; the secondary indexes are
    dropped during the load and built again after it (much faster than maintaining
    twelve indexes row by row)."""
    schema.downgrade(engine, "base")
    schema.upgrade(engine)
    indexes = _secondary_indexes(engine)
    with engine.begin() as conn:
        for name, _sql in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    rng = random.Random(seed)
    subjects = [hashlib.sha256(f"s{i}".encode()).hexdigest() for i in range(50_000)]
    prev = ledger.GENESIS_HASH
    step = YEAR / events
    rows: list[tuple[Any, ...]] = []
    batch = 50_000
    started = time.perf_counter()
    postgres = engine.dialect.name == "postgresql"
    for seq in range(1, events + 1):
        action, method = _event_kind(rng)
        occurred = START + step * seq
        event = ledger.NewEvent(
            subject_key=rng.choice(subjects),
            brand=rng.choice(BRANDS),
            purpose=rng.choice(PURPOSES),
            purpose_version=rng.choice((1, 1, 1, 2)),
            text_hash="ab" * 32,
            action=action,
            method=method,
            actor="subject",
            language="en",
            occurred_at=occurred,
        )
        event_id = str(uuid.uuid4())
        body = ledger.canonical_json(event.document(seq, event_id, prev))
        digest = hashlib.sha256(body.encode()).digest()
        prev = digest
        # SQLite: the text form UTCDateTime stores ("YYYY-MM-DD HH:MM:SS.ffffff").
        moment: Any = occurred if postgres else occurred.strftime("%Y-%m-%d %H:%M:%S.%f")
        rows.append(
            (
                seq,
                event_id,
                event.subject_key,
                event.brand,
                event.purpose,
                action,
                moment,
                body,
                digest,
            )
        )
        if len(rows) == batch or seq == events:
            _insert(engine, rows, postgres)
            rows = []
            print(f"  inserted {seq:,} events ({time.perf_counter() - started:.0f} s)", flush=True)
    started = time.perf_counter()
    with engine.begin() as conn:
        for _name, sql in indexes:
            # psycopg reads % as a placeholder: the method indexes' LIKE has some.
            conn.exec_driver_sql(sql.replace("%", "%%") if postgres else sql)
        moved = conn.execute(
            update(LedgerHead).where(LedgerHead.id == 1).values(seq=events, hash=prev)
        ).rowcount
        if not moved:
            conn.execute(insert(LedgerHead).values(id=1, seq=events, hash=prev, frontier=b""))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # PostgreSQL: VACUUM also sets the visibility map (index-only scans for counts).
        conn.exec_driver_sql("VACUUM ANALYZE" if postgres else "ANALYZE")
    print(f"  indexes built and analysed ({time.perf_counter() - started:.0f} s)", flush=True)


def _insert(engine: Engine, rows: list[tuple[Any, ...]], postgres: bool) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if postgres:
            with cursor.copy(f"COPY consent_events ({COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.execute("BEGIN")
            cursor.executemany(
                f"INSERT INTO consent_events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                rows,
            )
            cursor.execute("COMMIT")
        raw.commit()
    finally:
        raw.close()


def _median_ms(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _middle_cursor(session: Session, filters: LogFilters) -> int:
    """The seq at the middle of the results (newest first): the cursor of a deep page."""
    total = search.count(session, filters)
    query = (
        select(ConsentEvent.seq)
        .where(*search._conditions(filters))
        .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.seq.desc())
        .offset(total // 2)
        .limit(1)
    )
    return int(session.scalar(query) or 1)


def searches(engine: Engine, repeat: int) -> list[tuple[str, float, float, float, int]]:
    with Session(engine) as session:
        busiest = session.execute(
            select(ConsentEvent.subject_key, func.count())
            .group_by(ConsentEvent.subject_key)
            .order_by(func.count().desc())
            .limit(1)
        ).one()[0]
        cases = [
            ("subject key", LogFilters(subject_key=busiest)),
            (
                "brand + purpose + 3 months",
                LogFilters(
                    brand="brand-03",
                    purpose="sms-offers",
                    since=START + timedelta(days=120),
                    until=START + timedelta(days=211),
                ),
            ),
            ("method (GPC signal)", LogFilters(method="gpc-signal")),
            ("method (portal)", LogFilters(method="portal")),
            ("whole log", LogFilters()),
        ]
        results = []
        for name, filters in cases:
            session.rollback()
            middle = _middle_cursor(session, filters)
            first, page = _median_ms(lambda f=filters: search.search(session, f), repeat)
            deep, _ = _median_ms(
                lambda f=filters, m=middle: search.search(session, f, before=m), repeat
            )
            last, _ = _median_ms(lambda f=filters: search.search(session, f, last=True), repeat)
            results.append((name, first, deep, last, page.total))
    return results


def stats_pages(engine: Engine, repeat: int) -> list[tuple[str, float]]:
    until = (START + YEAR).date()
    since = until - timedelta(days=365)
    out = []
    with Session(engine) as session:
        for name, query in (
            ("one brand, 12 months (weekly)", stats.StatsQuery(since, until, "brand-03")),
            ("all brands, 12 months (weekly)", stats.StatsQuery(since, until)),
        ):
            ms, _ = _median_ms(lambda q=query: stats.compute(session, q), repeat)
            out.append((name, ms))
    return out


def _export_child(url: str, limit: int | None, queue: Any) -> None:
    engine = create_db_engine(url)
    filters = LogFilters(until=START + YEAR * (limit / 1_000_000)) if limit else LogFilters()
    started = time.perf_counter()
    size = 0
    with Session(engine) as session, open("/dev/null", "wb") as sink:
        for chunk in search.export_csv(session, filters):
            size += len(chunk)
            sink.write(chunk)
    elapsed = time.perf_counter() - started
    queue.put((elapsed, size, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def export(url: str, limit: int | None) -> tuple[float, int, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_export_child, args=(url, limit, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=SQLITE_DEFAULT)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    parser.add_argument("--skip-export", action="store_true")
    args = parser.parse_args()
    url = args.database_url
    if url.startswith("postgresql"):
        admin = create_db_engine(
            make_url(url).set(database="postgres").render_as_string(hide_password=False),
            isolation_level="AUTOCOMMIT",
        )
        name = make_url(url).database
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
    engine = create_db_engine(url)
    print(f"Database: {engine.dialect.name} ({make_url(url).render_as_string()})")
    if not args.reuse:
        print(f"Building {args.events:,} events…")
        build(engine, args.events)
    with engine.connect() as conn:
        print(f"Events: {conn.execute(select(func.count()).select_from(ConsentEvent)).scalar():,}")

    print(f"\nSearch pages (ms, median of {args.repeat}; page = rows + total count)")
    print(f"{'search':32} {'first':>8} {'deep':>8} {'last':>8} {'last/first':>10} {'matches':>10}")
    for name, first, deep, last, total in searches(engine, args.repeat):
        print(f"{name:32} {first:8.1f} {deep:8.1f} {last:8.1f} {last / first:10.2f} {total:10,}")

    print("\nStatistics page (ms, median)")
    for name, ms in stats_pages(engine, max(1, args.repeat // 2)):
        print(f"{name:32} {ms:8.1f}")

    if not args.skip_export:
        print("\nCSV export (child process: seconds, MB written, peak RSS MB)")
        for label, limit in (("first 100,000 events", 100_000), ("all events", None)):
            seconds, size, rss = export(url, limit)
            print(f"{label:32} {seconds:8.1f} s {size / 1e6:8.1f} MB {rss:8.1f} MB RSS")
    engine.dispose()


if __name__ == "__main__":
    main()
