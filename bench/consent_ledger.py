"""Consent ledger benchmarks: write throughput of consent changes, and chain verification.

Run (see bench/README.md)::

    .venv/bin/python bench/consent_ledger.py                  # SQLite, temporary file
    .venv/bin/python bench/consent_ledger.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Every run works in its own scratch database, migrated with ``schema.upgrade``: a temporary
SQLite file, or on PostgreSQL a fresh ``vrm_bench_<random>`` database created on the
server the URL names (the URL's own database is only used to connect) and dropped, with
``WITH (FORCE)``, at the end.

1. Consent changes per second, with 1 and with 8 concurrent writers (threads, each with
   its own ``Session``). A change is one transaction, as a request makes it: load the
   account and the purpose, ``service.grant`` or ``service.withdraw`` (alternating) on a
   non-email purpose (``personalised-offers`` or ``analytics`` of one of the three demo
   brands) with a real Ed25519 ``Notary``, then commit. Every change records an event.

   Beside it, in the same run and with the same number of threads, a bare INSERT loop
   through SQLAlchemy Core. "Rows of the same size" means the same rows and bytes per
   transaction as a change writes: a consent change writes 4 rows (the ledger event with
   its ~500-byte canonical JSON body and 32-byte hash, the ledger head, the consent state
   and the signed receipt with its ~2 KB JWS), so each bare transaction INSERTs 4 rows
   carrying the same texts and hashes (taken from real changes made during the warm-up).
   The bare table has a primary key and nothing else: no secondary index, no trigger, no
   read, no lock, no signing; it is the cost of committing the same bytes. Brand
   relationships are created before timing (the first change for a brand would otherwise
   write a fifth row). Target: changes/s >= 50% of bare transactions/s.

   The chain is then verified (``ledger.verify``): it must be OK, which also shows that
   8 concurrent writers neither forked nor skipped a number.

2. Verification of ``--events`` (1,000,000) ledger events. The ledger is topped up to that
   many events without the service (documents built with ``NewEvent.document``, hashed
   and chained here, bulk-inserted with Core in batches), then, in a fresh process so
   that its peak memory says something:

   - ``ledger.verify(connection)`` is timed, and the growth of the peak RSS
     (``VmHWM``, reset just before; ``ru_maxrss`` where that is impossible) across it is
    recorded: flat memory means it streams;
   - "read + hash": the raw driver cursor reads ``SELECT body, hash ... ORDER BY seq``
     with ``fetchmany`` (server-side on PostgreSQL, like ``verify``) and hashes each body,
     checking nothing;
   - "SHA-256 only": ``hashlib.sha256(body).digest()`` over the same bodies, held in
     memory as bytes (collected before timing).

   Target: verify >= 50% of the SHA-256-only rate, with flat memory. The read + hash
   ratio shows how much of the gap is reading the rows at all.
"""

# The bench runs as a script from anywhere: put the repository root on sys.path first.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import argparse
import cProfile
import gc
import hashlib
import io
import math
import multiprocessing
import os
import platform
import pstats
import random
import resource
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from bench.scratch import Scratch, scratch_database
from vrm_portal import schema  # imports vrm_portal.all_models: every model is mapped
from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand, BrandRelationship
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, service
from vrm_portal.consent.models import (
    CollectionMethod,
    ConsentEvent,
    ConsentReceipt,
    LedgerHead,
    Purpose,
    PurposeVersion,
)
from vrm_portal.consent.receipts import generate_key_file, load_key_file
from vrm_portal.consent.service import Change, Notary, Outcome
from vrm_portal.db import READ_ONLY, UTCDateTime, create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.log import tree
from vrm_portal.log.models import LogNode

TARGET_RATIO = 0.5
#: Peak RSS growth during verify above which memory is not "flat" (a streaming verify
#: holds one fetch batch; holding the events would take hundreds of MiB per million).
FLAT_MEMORY_LIMIT_MIB = 64.0
BRANDS = ("aurore-automobiles", "maison-berlingot", "domaine-des-coteaux")
#: Non-email purposes: no double opt-in, so every grant is recorded at once.
PURPOSES = ("personalised-offers", "analytics")
WARM_UP_CHANGES = 24
#: Subjects the generated events are spread over (the ledger's subject keys).
GENERATED_SUBJECTS = 10_000


def log(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# ---- scratch database ---------------------------------------------------------------


def describe_engine(engine: Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
            levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
            return (
                f"SQLite {sqlite3.sqlite_version} (journal_mode={mode}, "
                f"synchronous={levels.get(int(synchronous or 0), synchronous)})"
            )
        version = connection.exec_driver_sql("SHOW server_version").scalar()
        commit = connection.exec_driver_sql("SHOW synchronous_commit").scalar()
        fsync = connection.exec_driver_sql("SHOW fsync").scalar()
        return f"PostgreSQL {version} (synchronous_commit={commit}, fsync={fsync})"


# ---- threads ------------------------------------------------------------------------


def run_threads(workers: Sequence[Callable[[], None]]) -> float:
    """Start ``workers`` together, one thread each; seconds until the last one finished."""
    barrier = threading.Barrier(len(workers) + 1)
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    with suppress(threading.BrokenBarrierError):
        barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def warm_pool(engine: Engine, size: int) -> None:
    """Open ``size`` pooled connections now, so no timed transaction pays for a connect."""
    connections = [engine.connect() for _ in range(size)]
    for connection in connections:
        connection.exec_driver_sql("SELECT 1")
        connection.rollback()
    for connection in connections:
        connection.close()


# ---- consent changes ----------------------------------------------------------------


@dataclass(frozen=True)
class PlannedChange:
    account_id: int
    brand: str
    purpose: str
    grant: bool


def create_accounts(engine: Engine, label: str, count: int) -> list[int]:
    """``count`` consumers, each already known to the three brands (relationship rows)."""
    prefix = f"bench-{label}-"
    with engine.begin() as connection:
        connection.execute(
            insert(Account),
            [{"email": f"{prefix}{i}@example.invalid", "locale": "en"} for i in range(count)],
        )
        ids = list(
            connection.scalars(
                select(Account.id).where(Account.email.startswith(prefix)).order_by(Account.id)
            )
        )
        brand_ids = list(connection.scalars(select(Brand.id)))
        connection.execute(
            insert(BrandRelationship),
            [{"account_id": account, "brand_id": brand} for account in ids for brand in brand_ids],
        )
    return ids


def plan_changes(engine: Engine, label: str, writers: int, total: int) -> list[list[PlannedChange]]:
    """Per writer, its own accounts' changes: grant a purpose, withdraw it, next purpose..."""
    per_writer = total // writers
    slots_per_account = len(BRANDS) * len(PURPOSES)
    accounts_per_writer = max(1, math.ceil(per_writer / 2 / slots_per_account))
    ids = create_accounts(engine, label, accounts_per_writer * writers)
    plans = []
    for writer in range(writers):
        mine = ids[writer * accounts_per_writer : (writer + 1) * accounts_per_writer]
        slots = [(a, b, p) for a in mine for b in BRANDS for p in PURPOSES]
        plans.append([PlannedChange(*slots[i // 2], grant=i % 2 == 0) for i in range(per_writer)])
    return plans


def consent_writer(
    factory: sessionmaker[Session], notary: Notary, plan: Sequence[PlannedChange]
) -> Callable[[], None]:
    def work() -> None:
        with factory() as session:
            for item in plan:
                account = session.get(Account, item.account_id)
                assert account is not None
                purpose = service.find_purpose(session, item.brand, item.purpose)
                change = Change(CollectionMethod.PORTAL, "en", utcnow())
                if item.grant:
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
                if result.outcome is not Outcome.RECORDED:
                    raise RuntimeError(f"{item} was not recorded: {result.outcome}")
                session.commit()

    return work


def run_changes(
    engine: Engine, notary: Notary, label: str, writers: int, total: int
) -> tuple[int, float]:
    plans = plan_changes(engine, label, writers, total)
    factory = sessionmaker(engine, expire_on_commit=False)
    warm_pool(engine, writers)
    seconds = run_threads([consent_writer(factory, notary, plan) for plan in plans])
    return sum(len(plan) for plan in plans), seconds


# ---- the bare INSERT baseline -------------------------------------------------------

BARE_METADATA = MetaData()
BARE_ROWS = Table(
    "bench_bare_rows",
    BARE_METADATA,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(64), nullable=False),
    Column("label", String(64)),
    Column("detail", String(64)),
    Column("action", String(16)),
    Column("at", UTCDateTime()),
    Column("body", Text),
    Column("hash", LargeBinary(32)),
)


def bare_transaction_rows(engine: Engine) -> list[dict[str, Any]]:
    """The 4 rows a consent change writes, with the sizes of real ones (from the warm-up)."""
    with engine.connect() as connection:
        events = connection.execute(
            select(ConsentEvent.subject_key, ConsentEvent.body, ConsentEvent.hash)
        ).all()
        receipts = list(connection.scalars(select(ConsentReceipt.jws)))
    mean_body = sum(len(e.body) for e in events) / len(events)
    mean_jws = sum(len(r) for r in receipts) / len(receipts)
    event = min(events, key=lambda e: abs(len(e.body) - mean_body))
    jws = min(receipts, key=lambda r: abs(len(r) - mean_jws))
    now = utcnow()
    return [
        {  # consent_events: subject key, brand, purpose, action, time, body, hash
            "kind": "event",
            "key": event.subject_key,
            "label": BRANDS[0],
            "detail": PURPOSES[0],
            "action": "granted",
            "at": now,
            "body": event.body,
            "hash": bytes(event.hash),
        },
        {  # consent_ledger_head: seq and hash
            "kind": "head",
            "key": "1",
            "label": None,
            "detail": None,
            "action": None,
            "at": None,
            "body": None,
            "hash": bytes(event.hash),
        },
        {  # consent_states: status, text hash, method, times
            "kind": "state",
            "key": hashlib.sha256(b"purpose text").hexdigest(),
            "label": "granted",
            "detail": "portal",
            "action": "granted",
            "at": now,
            "body": None,
            "hash": None,
        },
        {  # consent_receipts: receipt id, JWS, time
            "kind": "receipt",
            "key": str(uuid.uuid4()),
            "label": None,
            "detail": None,
            "action": None,
            "at": now,
            "body": jws,
            "hash": None,
        },
    ]


def payload_bytes(rows: Sequence[dict[str, Any]]) -> int:
    return sum(
        len(value.encode() if isinstance(value, str) else value)
        for row in rows
        for value in row.values()
        if isinstance(value, str | bytes)
    )


def bare_writer(engine: Engine, rows: Sequence[dict[str, Any]], count: int) -> Callable[[], None]:
    statement = insert(BARE_ROWS)

    def work() -> None:
        for _ in range(count):
            with engine.begin() as connection:
                for row in rows:
                    connection.execute(statement, row)

    return work


def run_bare(
    engine: Engine, rows: Sequence[dict[str, Any]], writers: int, total: int
) -> tuple[int, float]:
    per_writer = total // writers
    warm_pool(engine, writers)
    seconds = run_threads([bare_writer(engine, rows, per_writer) for _ in range(writers)])
    return per_writer * writers, seconds


# ---- the million-event ledger -------------------------------------------------------


def fill_ledger(engine: Engine, total: int, batch: int, seed: int) -> tuple[int, float]:
    """Top the chain up to ``total`` events, bypassing the service; (added, seconds).

    The public log's Merkle tree grows with them (its nodes and the head's frontier), as
    the ledger's own append does, so the log stays whole for what runs after."""
    rng = random.Random(seed)
    subjects = [f"{rng.getrandbits(256):064x}" for _ in range(GENERATED_SUBJECTS)]
    with engine.connect() as connection:
        head = connection.execute(
            select(LedgerHead.seq, LedgerHead.hash, LedgerHead.frontier).where(LedgerHead.id == 1)
        ).one()
        versions = connection.execute(
            select(Brand.slug, Purpose.key, PurposeVersion.version, PurposeVersion.content_hash)
            .join(Purpose, Purpose.brand_id == Brand.id)
            .join(PurposeVersion, PurposeVersion.purpose_id == Purpose.id)
            .where(PurposeVersion.version == Purpose.current_version)
        ).all()
    prev_hash = bytes(head.hash)
    first = head.seq + 1
    frontier = tree.decode_frontier(head.frontier, head.seq)
    start = utcnow()
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for low in range(first, total + 1, batch):
        high = min(low + batch - 1, total)
        rows = []
        nodes: list[dict[str, Any]] = []
        for seq in range(low, high + 1):
            brand, purpose, version, text_hash = rng.choice(versions)
            granted = rng.random() < 0.6
            occurred_at = start + timedelta(milliseconds=seq, microseconds=rng.randrange(1000))
            event = ledger.NewEvent(
                subject_key=rng.choice(subjects),
                brand=brand,
                purpose=purpose,
                purpose_version=version,
                text_hash=text_hash,
                action="granted" if granted else "withdrawn",
                method="portal",
                actor="subject",
                language=rng.choice(("en", "fr")),
                occurred_at=occurred_at,
                expires_at=occurred_at + timedelta(days=730) if granted else None,
            )
            event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            body = ledger.canonical_json(event.document(seq, event_id, prev_hash))
            prev_hash = sha256(body.encode()).digest()
            nodes += [
                {"level": n.level, "idx": n.idx, "hash": n.hash}
                for n in tree.append_leaf(frontier, seq - 1, prev_hash)
            ]
            rows.append(
                {
                    "seq": seq,
                    "event_id": event_id,
                    "subject_key": event.subject_key,
                    "brand_slug": brand,
                    "purpose_key": purpose,
                    "action": event.action,
                    "occurred_at": occurred_at,
                    "body": body,
                    "hash": prev_hash,
                }
            )
        with engine.begin() as connection:
            connection.execute(insert(ConsentEvent), rows)
            connection.execute(insert(LogNode), nodes)
            connection.execute(
                update(LedgerHead)
                .where(LedgerHead.id == 1)
                .values(seq=high, hash=prev_hash, frontier=tree.encode_frontier(frontier))
            )
        if (high - first + 1) % (batch * 20) == 0:
            log(f"filled to event #{high:,}")
    return max(0, total - first + 1), time.perf_counter() - started


# ---- verification (in a fresh process) ----------------------------------------------


@dataclass(frozen=True)
class VerifyFigures:
    events: int
    ok: bool
    problem: str | None
    verify_seconds: float
    read_hash_events: int
    read_hash_seconds: float
    hash_events: int
    hash_seconds: float
    body_bytes: int
    rss_before_kib: int
    rss_after_kib: int
    #: How the peak was taken: "VmHWM" (reset before verify) or "ru_maxrss" (fallback).
    rss_method: str
    profile: str | None

    @property
    def rss_growth_mib(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / 1024


def proc_status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` figure (``VmRSS``, ``VmHWM``) in KiB; None off Linux."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def start_peak_rss() -> tuple[int, str]:
    """RSS now, with the peak mark reset to it when the kernel allows (``clear_refs`` 5).

    Without the reset, the peak of the imports would hide whatever ``verify`` uses below
    it; the fallback, ``ru_maxrss``, is only an upper-bound comparison.
    """
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    now = proc_status_kib("VmRSS")
    if now is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    return now, "VmHWM"


def peak_rss_kib(method: str) -> int:
    if method == "VmHWM":
        peak = proc_status_kib("VmHWM")
        if peak is not None:
            return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def stream(connection: Connection, query: str, batch: int, name: str) -> Iterator[Sequence[Any]]:
    """Batches of raw rows from the driver: the same kind of cursor ``ledger.verify`` uses."""
    dbapi: Any = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        cursor = dbapi.cursor(name=name)
        cursor.itersize = batch
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(query)
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


def measure_verification(url: str, batch: int, profile: bool) -> VerifyFigures:
    """Runs in a fresh process: verify, then the two baselines, on the same events."""
    engine = create_db_engine(url)
    sha256 = hashlib.sha256
    # Read-only, as `vrm verify-ledger` runs it (on SQLite: a deferred BEGIN, no write lock).
    with engine.connect().execution_options(**READ_ONLY) as connection:
        # Bring the table into the caches (server side), so no measurement pays for disk.
        connection.exec_driver_sql("SELECT sum(length(body)) FROM consent_events").scalar()
        connection.commit()

        rss_before, rss_method = start_peak_rss()
        started = time.perf_counter()
        result = ledger.verify(connection, batch=batch)
        verify_seconds = time.perf_counter() - started
        rss_after = peak_rss_kib(rss_method)
        connection.rollback()

        read_events = 0
        started = time.perf_counter()
        query = "SELECT body, hash FROM consent_events ORDER BY seq"
        for rows in stream(connection, query, batch, "bench_read_hash"):
            for body, _stored_hash in rows:
                sha256(body.encode()).digest()
            read_events += len(rows)
        read_seconds = time.perf_counter() - started
        connection.rollback()

        bodies: list[bytes] = []
        query = "SELECT body FROM consent_events ORDER BY seq"
        for rows in stream(connection, query, batch, "bench_bodies"):
            bodies.extend(body.encode() for (body,) in rows)
        connection.rollback()
        started = time.perf_counter()
        for body in bodies:
            sha256(body).digest()
        hash_seconds = time.perf_counter() - started

        report = None
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            ledger.verify(connection, batch=batch)
            profiler.disable()
            connection.rollback()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(14)
            report = text.getvalue()
    engine.dispose()
    return VerifyFigures(
        events=result.checked,
        ok=result.ok,
        problem=result.problem,
        verify_seconds=verify_seconds,
        read_hash_events=read_events,
        read_hash_seconds=read_seconds,
        hash_events=len(bodies),
        hash_seconds=hash_seconds,
        body_bytes=sum(len(body) for body in bodies),
        rss_before_kib=rss_before,
        rss_after_kib=rss_after,
        rss_method=rss_method,
        profile=report,
    )


# ---- report -------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    benchmark: str
    measured: str
    baseline: str
    baseline_figure: str
    ratio: str
    target: str
    result: str


def load_average() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def verdict(ratio: float) -> str:
    return "PASS" if ratio >= TARGET_RATIO else "MISS"


def print_table(title: str, lines: Sequence[Line], notes: Sequence[str]) -> None:
    header = Line("Benchmark", "Measured", "Baseline", "Baseline rate", "Ratio", "Target", "Result")
    table = [header, *lines]
    fields = list(Line.__dataclass_fields__)
    widths = [max(len(getattr(line, name)) for line in table) for name in fields]
    right = {"measured", "baseline_figure", "ratio"}

    def render(line: Line) -> str:
        cells = []
        for name, width in zip(fields, widths, strict=True):
            value = getattr(line, name)
            cells.append(value.rjust(width) if name in right else value.ljust(width))
        return "  ".join(cells).rstrip()

    rule = "-" * len(render(header))
    print()
    print(title)
    print(rule)
    print(render(header))
    print(rule)
    for line in lines:
        print(render(line))
    print(rule)
    for note in notes:
        print(note)
    print(flush=True)


# ---- main ---------------------------------------------------------------------------


def parse_writers(text: str) -> list[int]:
    try:
        writers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of integers") from None
    if not writers or min(writers) < 1:
        raise argparse.ArgumentTypeError("at least one writer count, each >= 1")
    return writers


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Consent ledger benchmarks (consent changes/s; chain verification).",
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the server to use (a scratch database is created on it); "
        "default: a temporary SQLite file",
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="ledger size to verify")
    parser.add_argument("--changes", type=int, default=2000, help="consent changes per run")
    parser.add_argument("--writers", type=parse_writers, default=[1, 8], help="e.g. 1,8")
    parser.add_argument(
        "--rounds", type=int, default=4, help="interleaved change/bare rounds per writer count"
    )
    parser.add_argument("--batch", type=int, default=10_000, help="insert and fetch batch")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the generated events")
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of one verify pass"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with scratch_database(args.database_url, "ledger") as scratch:
        engine = create_db_engine(
            scratch.url, pool_size=max(args.writers) + 2, max_overflow=max(args.writers)
        )
        try:
            return run(engine, scratch, args)
        finally:
            engine.dispose()


def run(engine: Engine, scratch: Scratch, args: argparse.Namespace) -> int:
    overall = time.perf_counter()
    load_at_start = load_average()
    log(f"scratch database: {scratch.label}")
    schema.upgrade(engine)
    BARE_METADATA.create_all(engine)
    with Session(engine) as session:
        load_demo_catalogue(session)
        session.commit()
    engine_text = describe_engine(engine)
    with tempfile.TemporaryDirectory(prefix="vrm_bench_key_") as keys:
        key_file = Path(keys) / "receipts.pem"
        generate_key_file(key_file)
        notary = Notary(load_key_file(key_file), "https://portal.bench.invalid")

    lines: list[Line] = []
    notes: list[str] = []

    # Warm-up (untimed): imports, statement caches, and real rows to size the bare loop.
    run_changes(engine, notary, "warm", 1, WARM_UP_CHANGES)
    bare_rows = bare_transaction_rows(engine)
    run_bare(engine, bare_rows, 1, WARM_UP_CHANGES)
    notes.append(
        f"Bare baseline: one transaction = {len(bare_rows)} INSERTs "
        f"({payload_bytes(bare_rows):,} bytes of text/hash), the rows a consent change "
        "writes (event, head, state, receipt); table with a primary key only."
    )

    for writers in args.writers:
        label = f"{writers} writer" + ("s" if writers > 1 else "")
        log(f"consent changes and bare INSERT transactions, {label}, {args.rounds} rounds")
        changes = bare = 0
        change_seconds = bare_seconds = 0.0
        per_round = max(writers, args.changes // args.rounds)
        for number in range(args.rounds):
            # Interleaved rounds, alternating which side goes first, so that load from
            # elsewhere on the machine falls on both sides alike.
            order = ("changes", "bare") if number % 2 == 0 else ("bare", "changes")
            for side in order:
                if side == "changes":
                    count, seconds = run_changes(
                        engine, notary, f"w{writers}r{number}", writers, per_round
                    )
                    changes, change_seconds = changes + count, change_seconds + seconds
                else:
                    count, seconds = run_bare(engine, bare_rows, writers, per_round)
                    bare, bare_seconds = bare + count, bare_seconds + seconds
        change_rate = rate(changes, change_seconds)
        bare_rate = rate(bare, bare_seconds)
        ratio = change_rate / bare_rate
        lines.append(
            Line(
                f"consent changes/s, {label}",
                f"{change_rate:,.0f}",
                f"bare INSERT txn/s ({len(bare_rows)} rows), {label}",
                f"{bare_rate:,.0f}",
                f"{ratio:.2f}",
                f">= {TARGET_RATIO:.2f}",
                verdict(ratio),
            )
        )
        notes.append(
            f"{label}: {changes:,} changes in {change_seconds:.2f} s; {bare:,} bare "
            f"transactions in {bare_seconds:.2f} s = {bare_rate * len(bare_rows):,.0f} "
            "bare rows/s."
        )

    with engine.connect().execution_options(**READ_ONLY) as connection:
        chain = ledger.verify(connection)
    chain_ok = chain.ok
    notes.append(
        f"Chain after the change runs: {'OK' if chain.ok else 'NOT OK'} "
        f"({chain.checked:,} events){'' if chain.ok else ': ' + str(chain.problem)}"
    )

    log(f"filling the ledger to {args.events:,} events")
    added, fill_seconds = fill_ledger(engine, args.events, args.batch, args.seed)
    notes.append(
        f"Ledger filled with {added:,} generated events in {fill_seconds:.1f} s "
        f"({rate(added, fill_seconds):,.0f} events/s, Core executemany, batches of "
        f"{args.batch:,})."
    )
    engine.dispose()  # the verifying process gets the database to itself

    log("verifying (fresh process)")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        figures = pool.submit(measure_verification, scratch.url, args.batch, args.profile).result()

    verify_rate = rate(figures.events, figures.verify_seconds)
    hash_rate = rate(figures.hash_events, figures.hash_seconds)
    read_rate = rate(figures.read_hash_events, figures.read_hash_seconds)
    size = f"{figures.events:,} events"
    lines.append(
        Line(
            f"ledger.verify events/s, {size}",
            f"{verify_rate:,.0f}",
            "hashlib.sha256 only, same bodies",
            f"{hash_rate:,.0f}",
            f"{verify_rate / hash_rate:.2f}",
            f">= {TARGET_RATIO:.2f}",
            verdict(verify_rate / hash_rate),
        )
    )
    lines.append(
        Line(
            f"ledger.verify events/s, {size}",
            f"{verify_rate:,.0f}",
            "read (driver cursor) + sha256",
            f"{read_rate:,.0f}",
            f"{verify_rate / read_rate:.2f}",
            "info",
            "-",
        )
    )
    growth = figures.rss_growth_mib
    lines.append(
        Line(
            "verify peak RSS growth",
            f"{growth:,.1f} MiB",
            f"{growth * 1024 * 1024 / max(figures.events, 1):.1f} B/event; "
            f"{figures.body_bytes / 1024 / 1024:,.0f} MiB of bodies",
            "",
            "",
            f"flat (< {FLAT_MEMORY_LIMIT_MIB:.0f} MiB)",
            "PASS" if growth < FLAT_MEMORY_LIMIT_MIB else "MISS",
        )
    )
    verified_ok = figures.ok and figures.events >= args.events
    notes.append(
        f"Verification of the filled chain: {'OK' if figures.ok else 'NOT OK'} "
        f"({figures.events:,} events checked in {figures.verify_seconds:.2f} s)"
        + ("" if figures.ok else f": {figures.problem}")
    )
    notes.append(
        f"Baselines: read + hash {figures.read_hash_seconds:.2f} s; sha256 only "
        f"{figures.hash_seconds:.2f} s over {figures.body_bytes / figures.hash_events:.0f}-byte "
        f"bodies on average. Memory: RSS {figures.rss_before_kib / 1024:.0f} MiB before "
        f"verify, peak {figures.rss_after_kib / 1024:.0f} MiB during it "
        f"({figures.rss_method}, fresh process)."
    )
    notes.append(
        f"Total run time {time.perf_counter() - overall:.0f} s on {os.cpu_count()} CPUs; "
        f"load average at start {load_at_start}, at end {load_average()} (other work on the "
        "machine makes the figures noisier)."
    )

    print_table(
        f"Consent ledger benchmark - {engine_text}, Python {platform.python_version()}, "
        f"scratch database {scratch.label}",
        lines,
        notes,
    )
    if figures.profile:
        print("cProfile of one ledger.verify pass (by own time):")
        print(figures.profile)
    return 0 if chain_ok and verified_ok else 1


if __name__ == "__main__":
    sys.exit(main())
