"""The write path's figures (issue "The write path"): what a consent save costs the server,
how writes grow with threads, the one-consumer read, and "withdraw all" of a brand.

Run::

    .venv/bin/python bench/write_path.py                      # SQLite, temporary file
    .venv/bin/python bench/write_path.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Each run works in its own scratch database (``bench/scratch.py``), migrated with
``schema.upgrade``, with the demo catalogue. Everything goes through the real app in
process (Flask's test client: the real routes, forms with their CSRF tokens, sign-in
cookies, the real SQL), so the figures are the server's own work without a network:

1. **Save**: a consent save through the brand page's form (``POST
   /consents/<brand>/<purpose>``, grant and withdraw alternating on a non-email purpose),
   by signed-in consumers. Per save: the SQL statements (a ``before_cursor_execute``
   listener; an ``executemany`` counts once) and the CPU time of the request's thread
   (``time.thread_time``: Python, drivers, SQLite itself; not the PostgreSQL server's
   CPU). Beside it, the same client on a constant endpoint: the test client's and
   Flask's own cost, which a real server pays too. Targets: <= 8 statements, <= 3 ms.
2. **Threads**: saves per second with 1 and with 8 threads (each its own consumers and
   test client), wall time. Target on PostgreSQL: 8 threads >= 4x 1 thread. The chain is
   verified afterwards.
3. **API read**: ``GET /api/v1/consumers/<id>`` by a brand's client: statements (the
   access record, written apart in production, left out) and CPU. Target <= 2.
4. **Withdraw all**: "withdraw all" of a brand with 6 consents given, against one
   withdrawal: CPU and wall time. Target < 2x.
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
import base64
import multiprocessing
import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

os.environ.setdefault("VRM_ENV", "testing")

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, func, select

from bench.scratch import scratch_database
from vrm_portal import create_app, schema
from vrm_portal.accounts import service as accounts
from vrm_portal.brands import clients
from vrm_portal.brands.models import BrandChange
from vrm_portal.brands.service import brand_by_slug, pairwise_id_for
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentReceipt, EventIntake
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.extensions import db

PASSWORD = "correct horse battery staple"
BRAND = "aurore-automobiles"
SIX = (
    "email-offers",
    "sms-offers",
    "personalised-offers",
    "partner-sharing",
    "analytics",
    "postal-offers",
)


def log(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def make_app(url: str, instance: Path, sequencer_mode: str = "inline") -> Flask:
    return create_app(
        {
            "LEDGER_SEQUENCER": sequencer_mode,
            "DATABASE_URL": url,
            "MAIL_BACKEND": "outbox",
            "MAIL_OUTBOX_DIR": str(instance / "outbox"),
            "RECEIPT_SIGNING_KEY_FILE": str(instance / "receipt.pem"),
            "LOG_SIGNING_KEY_FILE": str(instance / "log.pem"),
            "ARGON2_PARAMETERS": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
            "RATELIMIT_ENABLED": False,
            "API_RATE_LIMIT": "off",
            "BENCH_ENDPOINTS": True,
        }
    )


class Consumer:
    """A signed-in browser of one account, with the brand page's CSRF token."""

    def __init__(self, app: Flask, email: str) -> None:
        self.http: FlaskClient = app.test_client()
        page = self.http.get("/login").get_data(as_text=True)
        token = _csrf(page)
        response = self.http.post(
            "/login", data={"csrf_token": token, "email": email, "password": PASSWORD}
        )
        assert response.status_code == 302, response.status_code
        self.token = _csrf(self.http.get(f"/consents/{BRAND}").get_data(as_text=True))

    def save(self, key: str, choice: str) -> None:
        response = self.http.post(
            f"/consents/{BRAND}/{key}",
            data={"csrf_token": self.token, "choice": choice, "version": 1},
        )
        assert response.status_code == 303, response.get_data(as_text=True)[:300]

    def withdraw_all(self) -> None:
        response = self.http.post(
            f"/consents/{BRAND}/all/withdraw", data={"csrf_token": self.token}
        )
        assert response.status_code == 303


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, page[:300]
    return match.group(1)


def make_consumers(app: Flask, count: int, prefix: str) -> list[Consumer]:
    with app.app_context():
        for n in range(count):
            registration = accounts.register_account(
                db.session,
                f"{prefix}{n}@example.com",
                PASSWORD,
                locale="en",
                verification_ttl=timedelta(hours=1),
            )
            registration.account.email_verified_at = utcnow()
        db.session.commit()
    return [Consumer(app, f"{prefix}{n}@example.com") for n in range(count)]


def per_request(run: Callable[[], None], repeat: int) -> tuple[float, float]:
    """(median CPU ms, median wall ms) of ``run``."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.thread_time(), time.perf_counter()
        run()
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def bench_save(app: Flask, engine: Engine, repeat: int) -> dict[str, float]:
    (alice,) = make_consumers(app, 1, "save")
    alice.save("analytics", "grant")
    choices = iter(["withdraw", "grant"] * repeat)
    with counting(engine) as seen:
        alice.save("analytics", next(choices))
    statements = len(seen)
    cpu, wall = per_request(lambda: alice.save("analytics", next(choices)), repeat)
    bare = alice.http

    def constant() -> None:
        assert bare.get("/api/v1/_bench/constant?bytes=64").status_code == 200

    bare_cpu, _wall = per_request(constant, repeat)
    return {"statements": statements, "cpu_ms": cpu, "wall_ms": wall, "constant_cpu_ms": bare_cpu}


def run_sequencer(url: str, instance: str, stop: Any) -> None:
    """The worker's sequencer, in a process of its own (as ``vrm worker`` runs it):
    integrate what waits, then look again 5 ms later."""
    from sqlalchemy.exc import OperationalError

    from vrm_portal.consent import sequencer

    app = make_app(url, Path(instance), "worker")
    with app.app_context(), db.sessionmaker() as session:
        while True:
            finished = stop.is_set()
            try:
                if not sequencer.integrate_all(lambda: session) and not finished:
                    time.sleep(0.005)
            except OperationalError as exc:  # as the job engine would: run again
                print(f"sequencer batch failed, retried: {exc}", file=sys.stderr)
                continue
            if finished:
                return


class FeedWatcher:
    """Follows the brand's feed with its cursor (every 10 ms) and records, for each new
    entry, how long after the change (``occurred_at``, taken before its commit) it was
    first seen: the feed lag a brand's client sees."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lags: list[float] = []
        self.seqs: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        from vrm_portal.api.projection import changes_page

        with self.app.app_context():
            brand = brand_by_slug(db.session, BRAND)
            assert brand is not None
            brand_id = brand.id
            after = (
                db.session.scalar(
                    select(func.max(BrandChange.seq)).where(BrandChange.brand_id == brand_id)
                )
                or 0
            )
            db.session.rollback()
            idle = 0
            while idle < 50:
                page = changes_page(db.session, brand_id, after, 500)
                db.session.rollback()
                now = utcnow()
                for item in page.items:
                    occurred = datetime.fromisoformat(item["occurred_at"].replace("Z", "+00:00"))
                    self.lags.append((now - occurred).total_seconds())
                    self.seqs.append(item["seq"])
                after = page.next_cursor
                if self.stop.is_set() and not page.items:
                    idle += 1
                time.sleep(0.01)


def bench_threads(app: Flask, threads: int, per_thread: int, tag: str) -> float:
    consumers = make_consumers(app, threads, f"t{tag}x")
    for consumer in consumers:
        consumer.save("analytics", "grant")
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(consumer: Consumer) -> None:
        try:
            barrier.wait()
            for n in range(per_thread):
                consumer.save("analytics", "withdraw" if n % 2 == 0 else "grant")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(c,)) for c in consumers]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return threads * per_thread / elapsed


def bench_api(app: Flask, engine: Engine, repeat: int) -> dict[str, float]:
    (bob,) = make_consumers(app, 1, "api")
    for key in ("sms-offers", "personalised-offers", "analytics"):
        bob.save(key, "grant")
    with app.app_context():
        brand = brand_by_slug(db.session, BRAND)
        assert brand is not None
        created = clients.create_client(
            db.session, brand, clients.parse_scopes("consumers:read"), utcnow(), "bench"
        )
        account = accounts.find_account_by_email(db.session, "api0@example.com")
        assert account is not None
        pairwise = pairwise_id_for(db.session, account.id, brand)
        db.session.commit()
    http = app.test_client()
    basic = base64.b64encode(f"{created.client.client_id}:{created.secret}".encode()).decode()
    token = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    ).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    def read() -> None:
        assert http.get(f"/api/v1/consumers/{pairwise}", headers=headers).status_code == 200

    read()
    with counting(engine) as seen:
        read()
    reads = [s for s in seen if not s.startswith("INSERT INTO access_records")]
    cpu, wall = per_request(read, repeat)
    return {"statements": len(reads), "cpu_ms": cpu, "wall_ms": wall}


def bench_withdraw_all(app: Flask, engine: Engine, repeat: int) -> dict[str, float]:
    people = make_consumers(app, repeat, "all")
    singles = make_consumers(app, repeat, "one")
    for person in people:
        for key in SIX:
            if key != "email-offers":
                person.save(key, "grant")
    for person in singles:
        person.save("analytics", "grant")
    with app.app_context():
        # The email purpose too, as if confirmed: imported grants need no link.
        from vrm_portal.consent import service
        from vrm_portal.consent.models import CollectionMethod
        from vrm_portal.consent.signing import current_notary

        for n in range(repeat):
            account = accounts.find_account_by_email(db.session, f"all{n}@example.com")
            assert account is not None
            purpose = service.find_purpose(db.session, BRAND, "email-offers")
            service.grant(
                db.session,
                current_notary(),
                account,
                purpose,
                shown_version=purpose.current_version,
                change=service.Change(CollectionMethod.IMPORT, "en", utcnow()),
            )
        db.session.commit()
    everyone = iter(people)
    one = iter(singles)
    with counting(engine) as seen:
        next(everyone).withdraw_all()
    all_statements = len(seen)
    with counting(engine) as seen:
        next(one).save("analytics", "withdraw")
    one_statements = len(seen)
    all_cpu, all_wall = per_request(lambda: next(everyone).withdraw_all(), repeat - 1)
    one_cpu, one_wall = per_request(lambda: next(one).save("analytics", "withdraw"), repeat - 1)
    return {
        "all_statements": all_statements,
        "one_statements": one_statements,
        "all_cpu_ms": all_cpu,
        "one_cpu_ms": one_cpu,
        "all_wall_ms": all_wall,
        "one_wall_ms": one_wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=200, help="saves timed one by one")
    parser.add_argument("--per-thread", type=int, default=150, help="saves per thread")
    parser.add_argument("--writers", default="1,8")
    parser.add_argument(
        "--sequencer",
        choices=("inline", "worker"),
        default="worker",
        help="integrate in each change's transaction, or in a sequencer process",
    )
    args = parser.parse_args()
    with (
        scratch_database(args.database_url, "write") as scratch,
        tempfile.TemporaryDirectory(prefix="vrm_bench_write_") as folder,
    ):
        engine = create_db_engine(scratch.url)
        schema.upgrade(engine)
        engine.dispose()
        app = make_app(scratch.url, Path(folder), args.sequencer)
        with app.app_context():
            load_demo_catalogue(db.session)
            db.session.commit()
            app_engine: Engine = db.engine
        log(f"database {scratch.label}, sequencer {args.sequencer}")
        stop = multiprocessing.get_context("spawn").Event()
        worker = None
        if args.sequencer == "worker":
            worker = multiprocessing.get_context("spawn").Process(
                target=run_sequencer, args=(scratch.url, folder, stop)
            )
            worker.start()
            time.sleep(8)  # its app is up
        save = bench_save(app, app_engine, args.repeat)
        print(
            f"save through the form: {save['statements']} statements, "
            f"CPU {save['cpu_ms']:.2f} ms (wall {save['wall_ms']:.2f} ms); "
            f"constant endpoint CPU {save['constant_cpu_ms']:.2f} ms"
        )
        rates = {}
        for threads in (int(w) for w in args.writers.split(",")):
            watcher = FeedWatcher(app)
            watcher.thread.start()
            rates[threads] = bench_threads(app, threads, args.per_thread, str(threads))
            watcher.stop.set()
            watcher.thread.join()
            lags = sorted(watcher.lags) or [0.0]
            watcher.seqs = watcher.seqs or [0]
            p50, p99 = lags[len(lags) // 2] * 1000, lags[int(len(lags) * 0.99)] * 1000
            in_order = watcher.seqs == list(range(watcher.seqs[0], watcher.seqs[0] + len(lags)))
            print(
                f"{threads} writer thread(s): {rates[threads]:.0f} saves/s; feed lag p50 "
                f"{p50:.0f} ms, p99 {p99:.0f}"
                f" ms, max {lags[-1] * 1000:.0f} ms over {len(lags)} entries "
                f"({'each once, in order' if in_order else 'OUT OF ORDER'})"
            )
        if len(rates) > 1:
            low, high = min(rates), max(rates)
            print(f"scaling {high} vs {low}: {rates[high] / rates[low]:.2f}x")
        api = bench_api(app, app_engine, args.repeat)
        print(
            f"one-consumer API read: {api['statements']} statements, "
            f"CPU {api['cpu_ms']:.2f} ms (wall {api['wall_ms']:.2f} ms)"
        )
        bulk = bench_withdraw_all(app, app_engine, max(8, args.repeat // 10))
        print(
            f"withdraw all (6): {bulk['all_statements']} statements, "
            f"CPU {bulk['all_cpu_ms']:.2f} ms, wall {bulk['all_wall_ms']:.2f} ms; "
            f"one withdrawal: {bulk['one_statements']} statements, "
            f"CPU {bulk['one_cpu_ms']:.2f} ms, wall {bulk['one_wall_ms']:.2f} ms; "
            f"ratio CPU {bulk['all_cpu_ms'] / bulk['one_cpu_ms']:.2f}x, "
            f"wall {bulk['all_wall_ms'] / bulk['one_wall_ms']:.2f}x"
        )
        if worker is not None:
            stop.set()
            worker.join(timeout=120)
        with app.app_context(), db.engine.connect() as connection:
            verified = ledger.verify(connection)
        with app.app_context():
            waiting = db.session.scalar(select(func.count()).select_from(EventIntake))
            receipts = db.session.scalar(select(func.count()).select_from(ConsentReceipt))
            db.session.rollback()
        print(
            f"ledger: {verified.checked} events, {'OK' if verified.ok else verified.problem}; "
            f"{receipts} receipts, {waiting} events waiting"
        )
        if waiting or receipts != verified.checked:
            return 1
        app_engine.dispose()
        return 0 if verified.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
