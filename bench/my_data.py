"""My data benchmark: the timeline and "who read my data" pages for a long history.

Run (see bench/README.md)::

    .venv/bin/python bench/my_data.py                     # SQLite, temporary file
    .venv/bin/python bench/my_data.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

In a scratch database migrated with ``schema.upgrade`` (a temporary SQLite file, or on
PostgreSQL a fresh ``vrm_bench_mydata_<random>`` database dropped ``WITH (FORCE)`` at the
end), the demo catalogue is loaded, then (Core executemany in batches, no service layer):

- the consumer, with ``--entries`` (100,000) history entries spread evenly over the four
  sources of the timeline, one entry every 5 minutes, the sources taking turns: consent
  ledger events (bodies built with ``ledger.NewEvent.document``, hashed and chained, over
  the demo purposes, granted and withdrawn in turn), account events (sign-ins, password,
  profile and locale changes), interactions (over the three brands) and data requests
  (completed exports);
- a second consumer with as many entries at the same times (noise: the queries must pick
  the consumer's rows out of twice as many);
- for "who read my data", on ``aurore-automobiles``: ``--brand-consumers`` (5,000) other
  consumers with a relationship (the consumer's relationship id in the middle of theirs),
  a change feed of 20,000 entries of which every 1,000th is the consumer's, one API client
  and ``--access-records`` (10,000) reads over the last year, in turn a lookup (one in
  ten of the consumer), a 1,000-consumer page of the customer list (keyset sweep) and a
  250-entry page of the feed. About one read in six covers the consumer.

PostgreSQL gets a ``VACUUM ANALYZE`` after seeding; SQLite is left as the application
leaves it (no ``ANALYZE``).

Measuring. The app is built with ``create_app`` (development settings, a temporary
instance folder) and every call is made in ``app.test_request_context()`` (the pages use
Flask-Babel) on ``db.session``, as the routes do, with the account and the brand
catalogue already loaded and the session emptied before each call (a request starts with
an empty identity map). Each page is called twice untimed, then ``--repeat`` (30) times:

- ``timeline.timeline_page``: the first page, a deep page (the cursor of the entry 60%
  down the history, written with ``timeline.encode_cursor`` and read back with
  ``decode_cursor`` as the route does), each unfiltered, with a brand filter and with the
  consents type filter. The bench checks that each page is full and that the deep page
  starts right after the cursor's entry.
- ``access.reads_of``: the first page, the last page (``OFFSET``), the first page with a
  brand filter; ``access.reads_by_brand``: the per-brand summary.

For each: the mean and the 95th percentile of the wall time of one call, and the number
of SQL statements one call executes (a ``before_cursor_execute`` listener on the engine;
transaction control, such as the ``BEGIN IMMEDIATE`` the SQLite engine sends, is left
out so that both engines count the same queries). A keyset page should cost the same on
the first page and deep down: compare the two rows of each filter. The timeline's
statements are the merged keys, then one query per source present on the page (plus the
purpose titles when consents are on it); the figure does not grow with the history.
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
import hashlib
import math
import os
import platform
import secrets
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, insert, select, update
from sqlalchemy.orm import Session

from bench.scratch import scratch_database
from vrm_portal import schema  # imports vrm_portal.all_models: every model is mapped
from vrm_portal.accounts.models import Account, AccountEvent, EventKind
from vrm_portal.brands.models import ApiClient, Brand, BrandChange, BrandRelationship, ChangeKind
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentEvent, LedgerHead, Purpose, PurposeVersion
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.history.models import AccessKind, AccessRecord, Interaction
from vrm_portal.mydata import access, timeline
from vrm_portal.mydata.entries import EntryType, Source
from vrm_portal.requests.models import DataRequest, ExportFormat, RequestKind, RequestStatus

#: Time between two consecutive entries of a history (100,000 entries: about a year).
STEP = timedelta(minutes=5)
#: The timeline's sources, in the turn they take in the seeded history.
SOURCES = (Source.CONSENT, Source.ACCOUNT, Source.INTERACTION, Source.REQUEST)
ACCOUNT_KINDS = (
    EventKind.SIGNED_IN.value,
    EventKind.PASSWORD_CHANGED.value,
    EventKind.PROFILE_CHANGED.value,
    EventKind.LOCALE_CHANGED.value,
)
#: Where the deep page starts, as a fraction of the history.
DEEP = 0.6
READ_BRAND = "aurore-automobiles"
FEED_ENTRIES = 20_000
#: Every this many feed entries, one is the consumer's.
CONSUMER_FEED_EVERY = 1_000
LIST_PAGE = 1_000
FEED_PAGE = 250
#: Lookups of the consumer: one in this many.
CONSUMER_LOOKUP_EVERY = 10
#: Statements that are not counted (SQLite's engine sends BEGIN IMMEDIATE itself).
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def log(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# ---- the engine ---------------------------------------------------------------------


def describe_engine(engine: Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            return f"SQLite {sqlite3.sqlite_version} (journal_mode={mode})"
        version = connection.exec_driver_sql("SHOW server_version").scalar()
        return f"PostgreSQL {version}"


# ---- seeding ------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    account_id: int
    #: The consumer's entry ``DEEP`` down the history: the deep page's cursor.
    deep: timeline.Position
    #: When the entry just after it happened (the deep page's first entry).
    deep_next_at: datetime
    base: datetime
    seconds: float


def insert_batches(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], batch: int
) -> None:
    for offset in range(0, len(rows), batch):
        session.execute(insert(model), rows[offset : offset + batch])


def new_account(session: Session, name: str) -> Account:
    account = Account(
        email=f"{name}@bench.example",
        given_name="Camille",
        family_name="Martin",
        email_verified_at=utcnow(),
    )
    session.add(account)
    session.flush()
    return account


def history_rows(
    accounts: Sequence[Account],
    entries: int,
    base: datetime,
    brands: Sequence[Brand],
    purposes: Sequence[tuple[str, str, int, str]],
) -> dict[str, list[dict[str, Any]]]:
    """Each account's entries, the sources taking turns, one every ``STEP`` back from
    ``base`` (later accounts a few seconds earlier, so no two entries tie)."""
    rows: dict[str, list[dict[str, Any]]] = {
        "consent": [],
        "account": [],
        "interaction": [],
        "request": [],
    }
    formats = [f.value for f in ExportFormat]
    for number, account in enumerate(accounts):
        for n in range(entries):
            at = base - n * STEP - timedelta(seconds=7 * number)
            rank = n // len(SOURCES)
            source = SOURCES[n % len(SOURCES)]
            if source is Source.CONSENT:
                brand, purpose, version, text_hash = purposes[rank % len(purposes)]
                rows["consent"].append(
                    {
                        "subject_key": account.subject_key,
                        "brand": brand,
                        "purpose": purpose,
                        "version": version,
                        "text_hash": text_hash,
                        "at": at,
                    }
                )
            elif source is Source.ACCOUNT:
                kind = ACCOUNT_KINDS[rank % len(ACCOUNT_KINDS)]
                rows["account"].append(
                    {
                        "account_id": account.id,
                        "kind": kind,
                        "created_at": at,
                        "ip_address": "192.0.2.10",
                        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
                        "detail": {"locale": "fr"} if kind == EventKind.LOCALE_CHANGED else {},
                    }
                )
            elif source is Source.INTERACTION:
                rows["interaction"].append(
                    {
                        "interaction_id": str(uuid.uuid4()),
                        "account_id": account.id,
                        "brand_id": brands[rank % len(brands)].id,
                        "type": "purchase",
                        "occurred_at": at,
                        "recorded_at": at,
                        "summary": f"Order {rank}: a box of chocolates",
                        "body": {
                            "type": "purchase",
                            "summary": f"Order {rank}: a box of chocolates",
                            "amount": {"value": "42.50", "currency": "EUR"},
                            "reference": f"ORD-{rank:08d}",
                        },
                        "request_hash": "0" * 64,
                    }
                )
            else:
                rows["request"].append(
                    {
                        "account_id": account.id,
                        "subject_key": account.subject_key,
                        "kind": RequestKind.EXPORT.value,
                        "status": RequestStatus.COMPLETED.value,
                        "format": formats[rank % len(formats)],
                        "requested_at": at,
                        "completed_at": at + timedelta(seconds=2),
                        "detail": {},
                    }
                )
    # The ledger in time order: seq 1, 2, 3... oldest first, hashed and chained, each
    # purpose granted and withdrawn in turn.
    events = sorted(rows["consent"], key=lambda e: e["at"])
    granted: dict[tuple[str, str, str], bool] = {}
    ledger_rows = []
    prev_hash = ledger.GENESIS_HASH
    for seq, item in enumerate(events, start=1):
        slot = (item["subject_key"], item["brand"], item["purpose"])
        grant = not _flip(granted, slot)
        new = ledger.NewEvent(
            subject_key=item["subject_key"],
            brand=item["brand"],
            purpose=item["purpose"],
            purpose_version=item["version"],
            text_hash=item["text_hash"],
            action="granted" if grant else "withdrawn",
            method="portal",
            actor="subject",
            language="en",
            occurred_at=item["at"],
            expires_at=item["at"] + timedelta(days=730) if grant else None,
        )
        event_id = str(uuid.uuid4())
        body = ledger.canonical_json(new.document(seq, event_id, prev_hash))
        digest = hashlib.sha256(body.encode()).digest()
        ledger_rows.append(
            {
                "seq": seq,
                "event_id": event_id,
                "subject_key": new.subject_key,
                "brand_slug": new.brand,
                "purpose_key": new.purpose,
                "action": new.action,
                "occurred_at": new.occurred_at,
                "body": body,
                "hash": digest,
            }
        )
        prev_hash = digest
    rows["consent"] = ledger_rows
    return rows


def _flip(state: dict[tuple[str, str, str], bool], slot: tuple[str, str, str]) -> bool:
    """Whether ``slot`` was granted before this event; records that it now is or is not."""
    was = state.get(slot, False)
    state[slot] = not was
    return was


def seed_history(
    session: Session, consumer: Account, noise: Account, entries: int, batch: int
) -> tuple[datetime, int]:
    """Both histories; returns the newest entry's time and the last ledger seq."""
    brands = list(session.scalars(select(Brand).order_by(Brand.id)))
    purposes = [
        (slug, key, version, text_hash)
        for slug, key, version, text_hash in session.execute(
            select(Brand.slug, Purpose.key, PurposeVersion.version, PurposeVersion.content_hash)
            .join(Purpose, Purpose.brand_id == Brand.id)
            .join(PurposeVersion, PurposeVersion.purpose_id == Purpose.id)
            .where(PurposeVersion.version == Purpose.current_version)
            .order_by(Brand.slug, Purpose.key)
        )
    ]
    base = utcnow().replace(microsecond=0) - timedelta(hours=1)
    rows = history_rows([consumer, noise], entries, base, brands, purposes)
    insert_batches(session, ConsentEvent, rows["consent"], batch)
    insert_batches(session, AccountEvent, rows["account"], batch)
    insert_batches(session, Interaction, rows["interaction"], batch)
    insert_batches(session, DataRequest, rows["request"], batch)
    last = rows["consent"][-1]
    session.execute(
        update(LedgerHead).where(LedgerHead.id == 1).values(seq=last["seq"], hash=last["hash"])
    )
    return base, len(rows["consent"])


def seed_reads(
    session: Session, consumer: Account, noise: Account, brand_consumers: int, records: int
) -> None:
    """Relationships, the change feed and the access records of ``READ_BRAND``."""
    brand = session.scalars(select(Brand).where(Brand.slug == READ_BRAND)).one()
    brands = list(session.scalars(select(Brand).order_by(Brand.id)))
    created = utcnow() - timedelta(days=400)
    session.execute(
        insert(Account),
        [{"email": f"customer-{n}@bench.example", "locale": "en"} for n in range(brand_consumers)],
    )
    others = list(
        session.scalars(
            select(Account.id).where(Account.email.startswith("customer-")).order_by(Account.id)
        )
    )
    half = len(others) // 2

    def relate(account_ids: Sequence[int], to: Sequence[Brand]) -> None:
        if account_ids:
            session.execute(
                insert(BrandRelationship),
                [
                    {"account_id": a, "brand_id": b.id, "created_at": created}
                    for a in account_ids
                    for b in to
                ],
            )

    relate(others[:half], [brand])
    relate([consumer.id, noise.id], brands)
    relate(others[half:], [brand])
    relationships = session.execute(
        select(BrandRelationship.id, BrandRelationship.pairwise_id, BrandRelationship.account_id)
        .where(BrandRelationship.brand_id == brand.id)
        .order_by(BrandRelationship.id)
    ).all()
    mine = next(r for r in relationships if r.account_id == consumer.id)
    ids = [r.id for r in relationships]
    pairwise = [r.pairwise_id for r in relationships]

    now = utcnow()
    feed_start = now - timedelta(days=366)
    feed_step = timedelta(days=366) / FEED_ENTRIES
    session.execute(
        insert(BrandChange),
        [
            {
                "brand_id": brand.id,
                "seq": seq,
                "kind": ChangeKind.CONSENT_GRANTED.value,
                "pairwise_id": mine.pairwise_id
                if seq % CONSUMER_FEED_EVERY == 0
                else pairwise[(seq * 31) % len(pairwise)],
                "occurred_at": feed_start + seq * feed_step,
                "data": {"purpose": "email-offers", "version": 1},
            }
            for seq in range(1, FEED_ENTRIES + 1)
        ],
    )
    session.execute(update(Brand).where(Brand.id == brand.id).values(feed_seq=FEED_ENTRIES))
    client = ApiClient(
        brand_id=brand.id,
        client_id=f"bench-{secrets.token_hex(8)}",
        secret_hash=secrets.token_hex(32),  # not a PHC string: no secret authenticates
        name="CRM sync",
        scopes="consumers:read changes:read",
    )
    session.add(client)
    session.flush()

    list_pages = math.ceil(len(ids) / LIST_PAGE)
    feed_pages = math.ceil(FEED_ENTRIES / FEED_PAGE)
    step = timedelta(days=365) / records
    rows = []
    for r in range(records):
        turn = r // 3
        row: dict[str, Any] = {
            "brand_id": brand.id,
            "client_pk": client.id,
            "at": now - (records - r) * step,
        }
        if r % 3 == 0:
            target = mine.id if turn % CONSUMER_LOOKUP_EVERY == 0 else ids[(r * 7919) % len(ids)]
            row |= {
                "kind": AccessKind.CONSUMER.value,
                "scope": "consumers:read",
                "first_id": target,
                "last_id": target,
                "count": 1,
                "fields": ["consents", "profile.email", "profile.given_name"],
            }
        elif r % 3 == 1:
            page = ids[(turn % list_pages) * LIST_PAGE :][:LIST_PAGE]
            row |= {
                "kind": AccessKind.CONSUMERS.value,
                "scope": "consumers:read",
                "first_id": page[0],
                "last_id": page[-1],
                "count": len(page),
                "fields": ["consents", "profile.email"],
            }
        else:
            first = (turn % feed_pages) * FEED_PAGE + 1
            last = min(FEED_ENTRIES, first + FEED_PAGE - 1)
            row |= {
                "kind": AccessKind.CHANGES.value,
                "scope": "changes:read",
                "first_id": first,
                "last_id": last,
                "count": last - first + 1,
                "fields": ["consent"],
            }
        rows.append(row)
    session.execute(insert(AccessRecord), rows)


def seed(url: str, entries: int, brand_consumers: int, records: int, batch: int) -> Seeded:
    started = time.perf_counter()
    engine = create_db_engine(url)
    schema.upgrade(engine)
    with Session(engine) as session:
        load_demo_catalogue(session)
        session.commit()
        consumer = new_account(session, "consumer")
        noise = new_account(session, "noise")
        session.commit()
        base, events = seed_history(session, consumer, noise, entries, batch)
        log(f"seeded {2 * entries:,} history entries ({events:,} ledger events)")
        seed_reads(session, consumer, noise, brand_consumers, records)
        session.commit()
        log(f"seeded {records:,} access records, {FEED_ENTRIES:,} feed entries")
        deep = int(entries * DEEP)
        source = SOURCES[deep % len(SOURCES)]
        rank = deep // len(SOURCES)
        at_column, id_column, owner = {
            Source.CONSENT: (
                ConsentEvent.occurred_at,
                ConsentEvent.seq,
                ConsentEvent.subject_key == consumer.subject_key,
            ),
            Source.ACCOUNT: (
                AccountEvent.created_at,
                AccountEvent.id,
                AccountEvent.account_id == consumer.id,
            ),
            Source.INTERACTION: (
                Interaction.occurred_at,
                Interaction.id,
                Interaction.account_id == consumer.id,
            ),
            Source.REQUEST: (
                DataRequest.requested_at,
                DataRequest.id,
                DataRequest.account_id == consumer.id,
            ),
        }[source]
        at, id_ = session.execute(
            select(at_column, id_column)
            .where(owner)
            .order_by(at_column.desc(), id_column.desc())
            .offset(rank)
            .limit(1)
        ).one()
        account_id = consumer.id
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return Seeded(
        account_id=account_id,
        deep=timeline.Position(at, source, int(id_)),
        deep_next_at=base - (deep + 1) * STEP,
        base=base,
        seconds=time.perf_counter() - started,
    )


# ---- measuring ----------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    section: str
    label: str
    mean_ms: float
    p95_ms: float
    statements: int
    items: int
    note: str = ""


def p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def measure(
    session: Session,
    statements: list[int],
    repeat: int,
    call: Callable[[], Any],
) -> tuple[list[float], int, Any]:
    """Times of ``repeat`` calls (after 2 untimed ones), the statements of one call, and
    the last result. The session is emptied before each call, as a request starts."""
    result: Any = None
    for _ in range(2):
        session.expunge_all()
        result = call()
        session.expunge_all()
        session.rollback()
    samples = []
    counts = set()
    for _ in range(repeat):
        session.expunge_all()
        before = statements[0]
        started = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - started)
        counts.add(statements[0] - before)
        session.expunge_all()
        session.rollback()
    return samples, max(counts), result


def run(url: str, seeded: Seeded, repeat: int, instance: str) -> list[Figure]:
    os.environ["VRM_ENV"] = "development"
    from vrm_portal import create_app
    from vrm_portal.extensions import db

    app = create_app(
        {
            "DATABASE_URL": url,
            "MAIL_OUTBOX_DIR": f"{instance}/outbox",
            "RECEIPT_SIGNING_KEY_FILE": f"{instance}/receipt_signing_key.pem",
        }
    )
    figures = []
    with app.test_request_context("/my-data/"):
        statements = [0]

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            # Queries only: not the BEGIN (IMMEDIATE) the SQLite engine sends itself.
            if not statement.lstrip().upper().startswith(TRANSACTION_CONTROL):
                statements[0] += 1

        event.listen(db.engine, "before_cursor_execute", count)
        session = db.session
        account = session.get_one(Account, seeded.account_id)
        brands = list(session.scalars(select(Brand).order_by(Brand.name)))
        read_brand = next(b for b in brands if b.slug == READ_BRAND)
        session.expunge_all()  # detached, with their attributes loaded: no refresh
        session.rollback()
        # The deep page's cursor, as the page's link carries it.
        text = timeline.encode_cursor(timeline.Cursor(seeded.deep, older=True))
        deep = timeline.decode_cursor(text)

        cases: list[tuple[str, dict[str, Any]]] = [
            ("all", {}),
            (f"brand={read_brand.slug}", {"brand": read_brand}),
            ("type=consents", {"entry_type": EntryType.CONSENTS}),
        ]
        for name, filters in cases:
            for where, cursor in (("first page", None), (f"deep page ({DEEP:.0%})", deep)):

                def page(filters: dict[str, Any] = filters, cursor: Any = cursor) -> Any:
                    return timeline.timeline_page(
                        session, account, locale="en", brands=brands, cursor=cursor, **filters
                    )

                samples, count_, result = measure(session, statements, repeat, page)
                check_page(result, name, cursor is not None, seeded)
                figures.append(
                    Figure(
                        "timeline",
                        f"{where}, {name}",
                        statistics.fmean(samples) * 1000,
                        p95(samples) * 1000,
                        count_,
                        len(result.entries),
                    )
                )

        first_page = measure(session, statements, 2, lambda: access.reads_of(session, account.id))
        pages = first_page[2].pages
        access_cases: list[tuple[str, Callable[[], Any]]] = [
            ("reads_of, first page", lambda: access.reads_of(session, account.id)),
            (
                f"reads_of, last page ({pages:,})",
                lambda: access.reads_of(session, account.id, page=pages),
            ),
            (
                f"reads_of, first page, brand={read_brand.slug}",
                lambda: access.reads_of(session, account.id, brand=read_brand),
            ),
            ("reads_by_brand (summary)", lambda: access.reads_by_brand(session, account.id)),
        ]
        for label, call in access_cases:
            samples, count_, result = measure(session, statements, repeat, call)
            if isinstance(result, access.ReadsPage):
                items, note = len(result.items), f"{result.total:,} reads cover the consumer"
            else:
                items = len(result)
                note = ", ".join(f"{r.brand.slug}: {r.reads:,}" for r in result)
            figures.append(
                Figure(
                    "access",
                    label,
                    statistics.fmean(samples) * 1000,
                    p95(samples) * 1000,
                    count_,
                    items,
                    note,
                )
            )
        event.remove(db.engine, "before_cursor_execute", count)
    return figures


def check_page(page: timeline.TimelinePage, name: str, deep: bool, seeded: Seeded) -> None:
    """The page is full, and the deep page starts right after the cursor's entry."""
    if len(page.entries) != timeline.DEFAULT_PER_PAGE:
        raise SystemExit(f"{name}: {len(page.entries)} entries on a page")
    if deep and name == "all" and page.entries[0].at != seeded.deep_next_at:
        raise SystemExit(
            f"deep page starts at {page.entries[0].at}, expected {seeded.deep_next_at}"
        )


# ---- main ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--access-records", type=int, default=10_000)
    parser.add_argument("--brand-consumers", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    if args.entries < 400 or args.repeat < 1 or args.access_records < 3:
        parser.error("need --entries >= 400, --repeat >= 1, --access-records >= 3")

    load_start = os.getloadavg()[0]
    with (
        scratch_database(args.database_url, "mydata") as scratch,
        tempfile.TemporaryDirectory() as instance,
    ):
        url = scratch.url
        engine = create_db_engine(url)
        engine_name = describe_engine(engine)
        engine.dispose()
        log(f"seeding ({engine_name})")
        seeded = seed(url, args.entries, args.brand_consumers, args.access_records, args.batch)
        log(f"measuring ({args.repeat} calls per page)")
        figures = run(url, seeded, args.repeat, instance)

    print()
    print(f"My data benchmark on {engine_name}")
    print(
        f"{args.entries:,} history entries for the consumer (+ as many for another), "
        f"{args.access_records:,} access records; {args.repeat} calls per page "
        f"({platform.python_implementation()} {platform.python_version()})"
    )
    print()
    print("| page | entries | mean ms | p95 ms | SQL statements |")
    print("|---|---:|---:|---:|---:|")
    section = ""
    for figure in figures:
        if figure.section != section:
            section = figure.section
            title = "timeline_page" if section == "timeline" else "who read my data"
            print(f"| **{title}** | | | | |")
        print(
            f"| {figure.label} | {figure.items} | {figure.mean_ms:.1f} | "
            f"{figure.p95_ms:.1f} | {figure.statements} |"
        )
    print()
    for figure in figures:
        if figure.note:
            print(f"{figure.label}: {figure.note}")
    print(f"seeding: {seeded.seconds:.1f} s")
    print(f"load average: {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
