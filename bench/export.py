"""Export benchmark: time and peak memory of "download my data" for long histories.

Run (see bench/README.md)::

    .venv/bin/python bench/export.py                     # SQLite, temporary file
    .venv/bin/python bench/export.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

In a scratch database migrated with ``schema.upgrade`` (a temporary SQLite file, or on
PostgreSQL a fresh ``vrm_bench_export_<random>`` database dropped ``WITH (FORCE)`` at the
end), the demo catalogue is loaded, then for each size (1,000, 10,000, 100,000) one
consumer is created whose history holds that many interactions (bulk-inserted with Core
executemany, no ledger involved), plus one account event per hundred.

Each format (JSON, CSV ZIP, HTML) of each consumer is then exported in a fresh Python
process, through the same builder and writers as the download route (read-only
snapshot transaction, in a request context for the HTML template), the bytes counted and
thrown away. The child reports the time, the bytes, its peak RSS (``ru_maxrss``) and the
growth of its peak RSS across the export (``VmHWM`` reset just before through
``/proc/self/clear_refs``, minus ``VmRSS`` then): flat memory means the export streams.
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
import subprocess
import tempfile
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.scratch import scratch_database
from vrm_portal import schema
from vrm_portal.accounts.models import Account, AccountEvent
from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.history.models import Interaction

FORMATS = ("json", "csv", "html")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed(url: str, sizes: list[int], batch: int) -> dict[int, int]:
    """One consumer per size with that many interactions; returns size -> account id."""
    engine = create_db_engine(url)
    schema.upgrade(engine)
    accounts = {}
    with Session(engine) as session:
        load_demo_catalogue(session)
        session.commit()
        brands = list(session.scalars(select(Brand.id).order_by(Brand.id)))
        for size in sizes:
            account = Account(
                email=f"consumer-{size}@bench.example",
                given_name="Camille",
                family_name="Martin",
                phone="+33612345678",
                postal_address="12 rue des Lilas\n75011 Paris",
                email_verified_at=utcnow(),
            )
            session.add(account)
            session.commit()
            accounts[size] = account.id
            started = time.perf_counter()
            now = utcnow()
            for offset in range(0, size, batch):
                rows = []
                for n in range(offset, min(size, offset + batch)):
                    rows.append(
                        {
                            "interaction_id": str(uuid.uuid4()),
                            "account_id": account.id,
                            "brand_id": brands[n % len(brands)],
                            "type": "purchase",
                            "occurred_at": now - timedelta(minutes=n),
                            "recorded_at": now,
                            "summary": f"Order {n}: a box of chocolates",
                            "body": {
                                "type": "purchase",
                                "summary": f"Order {n}: a box of chocolates",
                                "amount": {"value": "42.50", "currency": "EUR"},
                                "reference": f"ORD-{n:08d}",
                            },
                            "request_hash": "0" * 64,
                        }
                    )
                session.execute(insert(Interaction), rows)
            events = [
                {
                    "account_id": account.id,
                    "kind": "signed_in",
                    "created_at": now - timedelta(hours=n),
                    "ip_address": "192.0.2.10",
                    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
                    "detail": {},
                }
                for n in range(size // 100)
            ]
            if events:
                session.execute(insert(AccountEvent), events)
            session.commit()
            log(f"  seeded {size:,} interactions in {time.perf_counter() - started:.1f} s")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return accounts


# ---- child: one export in a fresh process ----------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_child(url: str, account_id: int, export_format: str, instance: str) -> None:
    os.environ["VRM_ENV"] = "development"
    from vrm_portal import create_app
    from vrm_portal.extensions import db
    from vrm_portal.requests import export_formats
    from vrm_portal.requests.export import begin_snapshot, build_export

    app = create_app(
        {
            "DATABASE_URL": url,
            "MAIL_OUTBOX_DIR": f"{instance}/outbox",
            "RECEIPT_SIGNING_KEY_FILE": f"{instance}/receipt_signing_key.pem",
        }
    )
    schema_url = "http://127.0.0.1:5000/my-data/export/schema.json"
    with app.test_request_context("/my-data/export/"):
        account = db.session.get_one(Account, account_id)
        db.commit()
        before = _status_kib("VmRSS")
        reset = False
        try:
            Path("/proc/self/clear_refs").write_text("5")
            reset = True
        except OSError:
            pass
        started = time.perf_counter()
        begin_snapshot(db.session)
        export = build_export(db.session, account, utcnow(), "en")
        if export_format == "json":
            chunks = export_formats.json_chunks(export, schema_url)
        elif export_format == "csv":
            chunks = export_formats.zip_chunks(export, schema_url)
        else:
            chunks = export_formats.html_chunks(export, schema_url, style_nonce="bench")
        size = sum(len(chunk) for chunk in chunks)
        seconds = time.perf_counter() - started
        db.rollback()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm = _status_kib("VmHWM") if reset else None
    growth = (hwm - before) if (hwm is not None and before is not None) else None
    print(
        json.dumps(
            {
                "seconds": seconds,
                "bytes": size,
                "peak_rss_kib": peak_kib,
                "growth_kib": growth,
                "rss_before_kib": before,
            }
        )
    )


# ---- parent ---------------------------------------------------------------------------


def measure(url: str, account_id: int, export_format: str, instance: str) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--database-url",
        url,
        "--account-id",
        str(account_id),
        "--format",
        export_format,
        "--instance",
        instance,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"export child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--account-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.database_url, args.account_id, args.format, args.instance)
        return

    sizes = [int(size) for size in args.sizes.split(",")]
    formats = [name for name in args.formats.split(",") if name]
    with (
        scratch_database(args.database_url, "export") as scratch,
        tempfile.TemporaryDirectory() as instance,
    ):
        url = scratch.url
        engine_name = make_url(url).get_backend_name()
        log(f"==> seeding ({engine_name})")
        accounts = seed(url, sizes, args.batch)
        rows = []
        for size in sizes:
            for export_format in formats:
                log(f"==> {size:,} entries, {export_format}")
                rows.append(
                    (size, export_format, measure(url, accounts[size], export_format, instance))
                )

    print()
    print(f"Export benchmark on {engine_name} (one fresh process per export)")
    print()
    print("| history entries | format | seconds | output MB | peak RSS MB | peak RSS growth MB |")
    print("|---:|---|---:|---:|---:|---:|")
    for size, export_format, result in rows:
        growth = result["growth_kib"]
        growth_text = f"{growth / 1024:.1f}" if growth is not None else "n/a"
        print(
            f"| {size:,} | {export_format} | {result['seconds']:.2f} | "
            f"{result['bytes'] / 1e6:.2f} | {result['peak_rss_kib'] / 1024:.0f} | {growth_text} |"
        )
    print()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
