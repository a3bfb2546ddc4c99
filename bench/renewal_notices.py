"""Renewal notices benchmark: publish a new text version for 100,000 consumers and time the
job that writes their ``consent.needs_renewal`` feed entries, with its memory.

Run (see bench/README.md)::

    .venv/bin/python bench/renewal_notices.py                    # SQLite, temporary file
    .venv/bin/python bench/renewal_notices.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

In a scratch database migrated with ``schema.upgrade`` (a temporary SQLite file, or on
PostgreSQL a fresh ``vrm_bench_renewal_<random>`` database dropped ``WITH (FORCE)`` at the
end), the demo catalogue is loaded, then, with Core executemany (not the services),
``--consumers`` accounts with their relationship to ``aurore-automobiles``, a consent to
``email-offers`` granted to version 1 each (the purpose republished) and one to
``sms-offers`` (another purpose of the brand, which the job must leave alone), and
``--endpoints`` webhook endpoints for the brand (each entry also queues one delivery
per endpoint, as in production).

A new text of ``email-offers`` is then published the way ``vrm publish-purpose-version``
does it (``publish_version`` in an app whose job engine is a Huey SQLite queue that no
worker consumes: the job is recorded and handed over, nothing runs it), and the job is run
in a fresh Python process through the engine's own path (``run_now``, as ``vrm jobs-run``
does). The child samples its ``VmRSS`` every 20 ms and times every transaction; the parent
then checks the feed (one entry per consumer, ``seq`` without gap, the deliveries) and
prints one table.
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
import json
import os
import resource
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.scratch import scratch_database
from vrm_portal import schema
from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand, BrandChange, BrandRelationship, ChangeKind
from vrm_portal.clock import utcnow
from vrm_portal.consent.models import (
    CollectionMethod,
    ConsentState,
    ConsentStatus,
    Purpose,
    PurposeVersion,
)
from vrm_portal.consent.renewal import BATCH_SIZE
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.jobs.models import Job
from vrm_portal.webhooks.models import WebhookDelivery, WebhookEndpoint

BRAND = "aurore-automobiles"
PURPOSE = "email-offers"
NOISE_PURPOSE = "sms-offers"
TARGET_SECONDS = 60.0
#: Memory is flat when the peak after the first 10% of the batches exceeds the RSS at
#: that point by less than this (one batch of rows is well under a MiB).
FLAT_MIB = 16.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def app_settings(url: str, instance: str) -> dict[str, Any]:
    return {
        "DATABASE_URL": url,
        "MAIL_OUTBOX_DIR": f"{instance}/outbox",
        "RECEIPT_SIGNING_KEY_FILE": f"{instance}/receipt_signing_key.pem",
        # A queue nobody consumes: publishing hands the job over, the child runs it.
        "JOBS_URL": f"sqlite:///{instance}/jobs.sqlite3",
    }


# ---- seeding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    brand_id: int
    purpose_id: int
    states: int
    seconds: float


def seed(url: str, consumers: int, endpoints: int, batch: int) -> Seeded:
    started = time.perf_counter()
    engine = create_db_engine(url)
    schema.upgrade(engine)
    with Session(engine) as session:
        load_demo_catalogue(session)
        session.commit()
    now = utcnow()
    states = 0
    with engine.begin() as connection:
        brand_id = connection.scalar(select(Brand.id).where(Brand.slug == BRAND))
        assert brand_id is not None
        purposes = {
            key: (purpose_id, content_hash, validity)
            for key, purpose_id, content_hash, validity in connection.execute(
                select(Purpose.key, Purpose.id, PurposeVersion.content_hash, Purpose.validity_days)
                .join(
                    PurposeVersion,
                    (PurposeVersion.purpose_id == Purpose.id)
                    & (PurposeVersion.version == Purpose.current_version),
                )
                .where(Purpose.brand_id == brand_id, Purpose.key.in_([PURPOSE, NOISE_PURPOSE]))
            )
        }
        for n in range(endpoints):
            connection.execute(
                insert(_table(WebhookEndpoint)).values(
                    brand_id=brand_id,
                    url=f"https://hooks{n}.aurore.example/vrm",
                    secret="whsec_" + secrets.token_urlsafe(32),
                    created_at=now,
                )
            )
        last_account_id = connection.scalar(select(func.max(Account.id))) or 0
        for start in range(0, consumers, batch):
            numbers = range(start, min(start + batch, consumers))
            connection.execute(
                insert(_table(Account)),
                [
                    {
                        "email": f"consumer{n:07d}@bench.invalid",
                        "email_verified_at": now,
                        "subject_key": secrets.token_hex(32),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in numbers
                ],
            )
            ids = list(
                connection.scalars(
                    select(Account.id).where(Account.id > last_account_id).order_by(Account.id)
                )
            )
            last_account_id = ids[-1]
            connection.execute(
                insert(_table(BrandRelationship)),
                [
                    {
                        "account_id": account_id,
                        "brand_id": brand_id,
                        "pairwise_id": str(uuid.uuid4()),
                        "created_at": now,
                    }
                    for account_id in ids
                ],
            )
            rows = []
            for account_id in ids:
                for key in (PURPOSE, NOISE_PURPOSE):
                    purpose_id, content_hash, validity = purposes[key]
                    rows.append(
                        {
                            "account_id": account_id,
                            "purpose_id": purpose_id,
                            "status": ConsentStatus.GRANTED.value,
                            "version": 1,
                            "content_hash": content_hash,
                            "granted_at": now,
                            "expires_at": now + timedelta(days=validity),
                            "method": CollectionMethod.PORTAL.value,
                            "granted_despite_gpc": False,
                            "last_event_seq": None,
                            "updated_at": now,
                        }
                    )
            connection.execute(insert(_table(ConsentState)), rows)
            states += len(rows)
    if engine.dialect.name == "postgresql":
        # What autovacuum would do a minute later anyway: statistics for the planner.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return Seeded(brand_id, purposes[PURPOSE][0], states, time.perf_counter() - started)


def publish(url: str, instance: str, purpose_id: int, job_batch: int) -> tuple[str, int, float]:
    """Publish version 2 of the purpose as the CLI does; returns the job id, the count the
    CLI prints, and the seconds the publishing transaction took."""
    os.environ["VRM_ENV"] = "development"
    from vrm_portal import create_app
    from vrm_portal.consent.catalogue import PurposeText, publish_version
    from vrm_portal.consent.renewal import JOB_KIND, count_due
    from vrm_portal.extensions import db

    app = create_app(app_settings(url, instance))
    with app.app_context():
        started = time.perf_counter()
        purpose = db.session.get_one(Purpose, purpose_id)
        text = PurposeText(
            title_en="Offers by email (2027 edition)",
            title_fr="Offres par e-mail (édition 2027)",
            text_en="We now also send the workshop calendar with our offers.",
            text_fr="Nous envoyons aussi le calendrier des ateliers avec nos offres.",
        )
        version = publish_version(db.session, purpose, text)
        assert version is not None
        affected = count_due(db.session, purpose, version.version)
        db.commit()
        seconds = time.perf_counter() - started
        job = db.session.scalars(select(Job).where(Job.kind == JOB_KIND)).one()
        if job_batch != BATCH_SIZE:
            job.payload = {**(job.payload or {}), "batch": job_batch}
            db.commit()
        job_id = job.id
        db.engine.dispose()
    return job_id, affected, seconds


# ---- child: the job in a fresh process --------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_child(url: str, job_id: str, instance: str) -> None:
    os.environ["VRM_ENV"] = "development"
    from vrm_portal import create_app

    app = create_app(app_settings(url, instance))
    engine = app.extensions["vrm_jobs"]
    began: dict[int, float] = {}
    transactions: list[tuple[float, float]] = []  # (begin, commit), perf_counter seconds

    @event.listens_for(Session, "after_begin")
    def _began(session: Session, _transaction: Any, _connection: Any) -> None:
        began[id(session)] = time.perf_counter()

    @event.listens_for(Session, "after_commit")
    def _committed(session: Session) -> None:
        start = began.pop(id(session), None)
        if start is not None:
            transactions.append((start, time.perf_counter()))

    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            rss = _status_kib("VmRSS")
            if rss is not None:
                samples.append((time.perf_counter(), rss))

    before = _status_kib("VmRSS")
    reset = False
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        pass
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    outcome = engine.run_now(job_id)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    hwm = _status_kib("VmHWM") if reset else None
    # The claim, the count, one per batch (the ledger head held), the finish.
    batches = transactions[2:-1] or transactions
    durations = [(end - start) * 1000 for start, end in batches]
    tenth = batches[len(batches) // 10][1]
    edge = max(1, len(durations) // 10)
    at_tenth = [rss for moment, rss in samples if moment <= tenth]
    after_tenth = [rss for moment, rss in samples if moment >= tenth]
    count = transactions[1] if len(transactions) > 1 else transactions[0]
    print(
        json.dumps(
            {
                "status": outcome.status,
                "seconds": seconds,
                "transactions": len(transactions),
                "count_ms": (count[1] - count[0]) * 1000,
                "longest_batch_ms": max(durations),
                "median_batch_ms": statistics.median(durations),
                "median_first_batches_ms": statistics.median(durations[:edge]),
                "median_last_batches_ms": statistics.median(durations[-edge:]),
                "rss_before_kib": before,
                "rss_at_tenth_kib": at_tenth[-1] if at_tenth else before,
                "peak_after_tenth_kib": max(after_tenth) if after_tenth else None,
                "peak_rss_kib": hwm or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "samples": len(samples),
            }
        )
    )


# ---- parent -------------------------------------------------------------------------------


def measure(url: str, job_id: str, instance: str) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--database-url",
        url,
        "--job-id",
        job_id,
        "--instance",
        instance,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"job child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass(frozen=True)
class Checked:
    entries: int
    distinct_consumers: int
    gapless: bool
    deliveries: int
    job_status: str
    job_result: dict[str, Any] | None
    progress: tuple[int, int | None]


def check(url: str, brand_id: int, job_id: str) -> Checked:
    engine = create_db_engine(url)
    with Session(engine) as session:
        kind = ChangeKind.CONSENT_NEEDS_RENEWAL.value
        entries, distinct, low, high = session.execute(
            select(
                func.count(),
                func.count(func.distinct(BrandChange.pairwise_id)),
                func.min(BrandChange.seq),
                func.max(BrandChange.seq),
            ).where(BrandChange.brand_id == brand_id, BrandChange.kind == kind)
        ).one()
        feed_seq = session.scalar(select(Brand.feed_seq).where(Brand.id == brand_id))
        everything = session.scalar(
            select(func.count()).select_from(BrandChange).where(BrandChange.brand_id == brand_id)
        )
        deliveries = session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.brand_id == brand_id)
        )
        job = session.get_one(Job, job_id)
        checked = Checked(
            entries=int(entries),
            distinct_consumers=int(distinct),
            gapless=bool(low == 1 and high == everything == feed_seq),
            deliveries=int(deliveries or 0),
            job_status=job.status,
            job_result=job.result,
            progress=(job.progress_done, job.progress_total),
        )
    engine.dispose()
    return checked


def _mib(kib: int | None) -> str:
    return f"{kib / 1024:.1f}" if kib is not None else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--consumers", type=int, default=100_000)
    parser.add_argument("--endpoints", type=int, default=1)
    parser.add_argument("--job-batch", type=int, default=BATCH_SIZE)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--job-id", help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.database_url, args.job_id, args.instance)
        return

    load_start = os.getloadavg()[0]
    with (
        scratch_database(args.database_url, "renewal") as scratch,
        tempfile.TemporaryDirectory() as instance,
    ):
        url = scratch.url
        engine_name = make_url(url).get_backend_name()
        log(f"==> seeding {args.consumers:,} consumers ({engine_name}, {scratch.label})")
        seeded = seed(url, args.consumers, args.endpoints, args.batch)
        log(f"  {seeded.states:,} consent states in {seeded.seconds:.1f} s")
        log("==> publishing version 2")
        job_id, affected, publish_seconds = publish(
            url, instance, seeded.purpose_id, args.job_batch
        )
        log(f"==> running job {job_id} ({affected:,} consumers to tell)")
        result = measure(url, job_id, instance)
        checked = check(url, seeded.brand_id, job_id)

    seconds = result["seconds"]
    rate = checked.entries / seconds if seconds else 0.0
    growth = (
        result["peak_after_tenth_kib"] - result["rss_at_tenth_kib"]
        if result["peak_after_tenth_kib"] is not None and result["rss_at_tenth_kib"] is not None
        else None
    )
    correct = (
        result["status"] == "done"
        and checked.entries == args.consumers == checked.distinct_consumers
        and checked.gapless
        and checked.deliveries == checked.entries * args.endpoints
    )
    print()
    print(
        f"Renewal notices benchmark on {engine_name}: {args.consumers:,} consumers, "
        f"job batch {args.job_batch:,}, {args.endpoints} webhook endpoint(s)"
    )
    print()
    print("| measure | value | target |")
    print("|---|---:|---|")
    verdict = "PASS" if seconds < TARGET_SECONDS else "MISS"
    print(f"| job: time to write the feed entries | {seconds:.1f} s | < 60 s — {verdict} |")
    print(f"| entries written per second | {rate:,.0f} | - |")
    print(
        f"| feed entries / distinct consumers / webhook deliveries | {checked.entries:,} / "
        f"{checked.distinct_consumers:,} / {checked.deliveries:,} | one each — "
        f"{'PASS' if correct else 'FAIL'} |"
    )
    print(f"| feed `seq` gapless, `feed_seq` = last | {checked.gapless} | True |")
    print(
        f"| batch transaction (ledger head held): median / longest | "
        f"{result['median_batch_ms']:.0f} / {result['longest_batch_ms']:.0f} ms | - |"
    )
    print(
        f"| median batch, first 10% / last 10% of the batches | "
        f"{result['median_first_batches_ms']:.0f} / {result['median_last_batches_ms']:.0f} ms "
        f"| flat (keyset) |"
    )
    print(f"| RSS before the job | {_mib(result['rss_before_kib'])} MiB | - |")
    print(f"| peak RSS during the job | {_mib(result['peak_rss_kib'])} MiB | - |")
    flat = "PASS" if growth is not None and growth / 1024 < FLAT_MIB else "MISS"
    print(
        f"| peak RSS growth after the first 10% of batches | {_mib(growth)} MiB | "
        f"< {FLAT_MIB:.0f} MiB (flat) — {flat} |"
    )
    print()
    print(
        f"Job: {checked.job_status}, result {checked.job_result}, progress "
        f"{checked.progress[0]:,}/{checked.progress[1]:,}, {result['transactions']} "
        f"transactions (the count at the start: {result['count_ms']:.0f} ms); publishing "
        f"took {publish_seconds * 1000:.0f} ms (the CLI would print "
        f"{affected:,} consumers). Seeding: {seeded.states:,} consent states in "
        f"{seeded.seconds:.1f} s. RSS sampled every 20 ms ({result['samples']} samples)."
    )
    print(f"Load average: {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.")
    if not correct:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
