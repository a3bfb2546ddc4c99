"""The public consent log's benchmark: the cost of the Merkle tree on the write path, and
the proofs, checkpoints and bundles over a ledger of 1,000,000 events.

Run (see bench/README.md)::

    .venv/bin/python bench/transparency_log.py                  # SQLite, temporary file
    .venv/bin/python bench/transparency_log.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

In a scratch database (bench/scratch.py), the ledger is filled to ``--events`` events
with their tree (bench/consent_ledger.py ``fill_ledger``), then:

1. **Consent changes per second, with and without the tree**: real changes through the
   consent service (one writer, a real Ed25519 notary, one transaction each), in
   interleaved rounds. "Without" replaces ``ledger.grow_tree`` by a no-op for the round;
   the tree is then caught up (untimed) before the next round. Target: with >= 90% of
   without.
2. **Inclusion proofs** at the full size, for random leaves, through the service (one
   query for the nodes) and through ``GET /log/proof/inclusion`` (Flask's test client:
   the route, its validation and its JSON, no network). Target: under 20 ms.
3. **Consistency proofs** between random sizes, the same two ways.
4. **A checkpoint after 10,000 new events**: ``sign_checkpoint`` (root from the right
   edge, the root again from the stored nodes, the consistency proof from the previous
   checkpoint and its check, the Ed25519 signature, one feed entry per brand).
5. **A proof bundle** for a consumer with 1,000 events (when ``vrm_portal.log.bundle``
   exists): the ZIP built, and its size.
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
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from bench.consent_ledger import consent_writer, fill_ledger, plan_changes, warm_pool
from bench.scratch import scratch_database
from vrm_portal import create_app, schema
from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger
from vrm_portal.consent.models import CollectionMethod, ConsentEvent, LedgerHead
from vrm_portal.consent.receipts import generate_key_file, load_key_file
from vrm_portal.consent.service import Change, Notary
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.extensions import db
from vrm_portal.log import service, tree
from vrm_portal.log.models import LogNode
from vrm_portal.log.signing import generate_key_file as generate_log_key
from vrm_portal.log.signing import log_signer

INCLUSION_TARGET_MS = 20.0
WRITE_TARGET = 0.90


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# ---- 1. the write path -----------------------------------------------------------------


def catch_up_tree(engine: Engine) -> None:
    """Give the events appended without the tree their leaves (after a "without" round)."""
    with engine.begin() as connection:
        size = connection.scalar(
            select(LogNode.idx).where(LogNode.level == 0).order_by(LogNode.idx.desc()).limit(1)
        )
        size = 0 if size is None else int(size) + 1
        # The right edge at ``size``: the stored complete subtrees along it.
        frontier: list[bytes] = []
        start = 0
        for level in tree.frontier_levels(size):
            store = tree.NodeStore(connection)
            frontier.append(store.subtree(start, start + (1 << level)))
            start += 1 << level
        rows = connection.execute(
            select(ConsentEvent.seq, ConsentEvent.hash)
            .where(ConsentEvent.seq > size)
            .order_by(ConsentEvent.seq)
        ).all()
        nodes: list[dict[str, Any]] = []
        for seq, digest in rows:
            nodes += [
                {"level": n.level, "idx": n.idx, "hash": n.hash}
                for n in tree.append_leaf(frontier, seq - 1, bytes(digest))
            ]
        if nodes:
            connection.execute(LogNode.__table__.insert(), nodes)
        connection.execute(
            update(LedgerHead)
            .where(LedgerHead.id == 1)
            .values(frontier=tree.encode_frontier(frontier))
        )


def run_round(engine: Engine, notary: Notary, label: str, changes: int, with_tree: bool) -> float:
    plans = plan_changes(engine, label, 1, changes)
    factory = sessionmaker(engine, expire_on_commit=False)
    warm_pool(engine, 1)
    original_grow, original_decode = ledger.grow_tree, tree.decode_frontier
    if not with_tree:
        ledger.grow_tree = lambda session, head, seq, digest: b""  # type: ignore[assignment]
        tree.decode_frontier = lambda blob, size: []  # type: ignore[assignment]
    try:
        work = consent_writer(factory, notary, plans[0])
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
    finally:
        ledger.grow_tree, tree.decode_frontier = original_grow, original_decode
    if not with_tree:
        catch_up_tree(engine)
    return changes / seconds


# ---- 2-3. proofs ---------------------------------------------------------------------


def timed(call: Callable[..., Any], *args: Any) -> float:
    """Milliseconds one call takes."""
    started = time.perf_counter()
    call(*args)
    return (time.perf_counter() - started) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=600, help="Changes per write round.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--proofs", type=int, default=300)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="vrm-bench-log-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    with scratch_database(url, "log") as scratch:
        engine = create_db_engine(scratch.url, pool_size=5)
        schema.upgrade(engine)
        with Session(engine) as session:
            load_demo_catalogue(session)
            session.commit()
        key_file = workdir / "receipts.pem"
        generate_key_file(key_file)
        notary = Notary(load_key_file(key_file), "http://127.0.0.1")
        log_key = workdir / "log.pem"
        generate_log_key(log_key)

        log(f"filling the ledger to {args.events:,} events, with the tree")
        added, fill_seconds = fill_ledger(engine, args.events, 5000, seed=7)
        log(f"filled {added:,} events in {fill_seconds:.0f} s")

        os.environ["VRM_ENV"] = "testing"
        app = create_app(
            {
                "DATABASE_URL": scratch.url,
                "RECEIPT_SIGNING_KEY_FILE": str(key_file),
                "LOG_SIGNING_KEY_FILE": str(log_key),
                "LOG_RATE_LIMIT": "1000000 per minute",
                "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
            }
        )

        # 1. writes, interleaved
        with_rates: list[float] = []
        without_rates: list[float] = []
        for round_no in range(args.rounds):
            for with_tree in (True, False) if round_no % 2 == 0 else (False, True):
                label = f"r{round_no}{'t' if with_tree else 'n'}"
                rate = run_round(engine, notary, label, args.changes, with_tree)
                (with_rates if with_tree else without_rates).append(rate)
                log(f"round {round_no}: {'with' if with_tree else 'without'} tree {rate:.0f}/s")
        with engine.connect() as connection:
            size = int(connection.scalar(select(LedgerHead.seq)) or 0)

        # a checkpoint at the full size, then 10,000 more events and the timed one
        with app.app_context():
            service.sign_checkpoint(db.session, log_signer(), utcnow())
            db.session.commit()
        fill_ledger(engine, size + 10_000, 5000, seed=11)
        with app.app_context():
            started = time.perf_counter()
            signed = service.sign_checkpoint(db.session, log_signer(), utcnow())
            db.session.commit()
            checkpoint_ms = (time.perf_counter() - started) * 1000
        assert signed is not None
        size = signed.checkpoint.size

        # 2-3. proofs
        rng = random.Random(3)
        client = app.test_client()
        inclusion_service: list[float] = []
        inclusion_http: list[float] = []
        consistency_service: list[float] = []
        consistency_http: list[float] = []
        with app.app_context():
            for _ in range(args.proofs):
                index = rng.randrange(size)
                inclusion_service.append(timed(service.inclusion, db.session, index, size))
                old = rng.randrange(1, size)
                consistency_service.append(timed(service.consistency, db.session, old, size))
            db.session.rollback()
        for _ in range(args.proofs):
            index = rng.randrange(size)
            inclusion_http.append(
                timed(client.get, f"/log/proof/inclusion?index={index}&size={size}")
            )
            old = rng.randrange(1, size)
            consistency_http.append(
                timed(client.get, f"/log/proof/consistency?from={old}&to={size}")
            )

        # 5. a bundle
        bundle_line = "proof bundle: vrm_portal.log.bundle is not there yet"
        try:
            from vrm_portal.log import bundle as bundle_module  # type: ignore[attr-defined]
        except ImportError:
            bundle_module = None
        if bundle_module is not None:
            bundle_line = bundle_benchmark(app, engine, notary, bundle_module)

        with app.app_context():
            db.engine.dispose()
        engine.dispose()

    engine_name = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    ratio = statistics.median(with_rates) / statistics.median(without_rates)
    print()
    print(f"Public consent log on {engine_name}, {size:,} events")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}"
    )
    print()
    print(f"{'figure':<46} {'value':>14}   target")
    print(
        f"{'consent changes/s with the tree (median)':<46} {statistics.median(with_rates):>14.0f}"
    )
    print(f"{'consent changes/s without (median)':<46} {statistics.median(without_rates):>14.0f}")
    print(
        f"{'with / without':<46} {ratio:>13.0%}   >= {WRITE_TARGET:.0%} "
        f"{'met' if ratio >= WRITE_TARGET else 'MISSED'}"
    )
    for name, values in (
        ("inclusion proof, service (ms, mean / p95)", inclusion_service),
        ("inclusion proof, GET /log/proof (ms)", inclusion_http),
        ("consistency proof, service (ms)", consistency_service),
        ("consistency proof, GET /log/proof (ms)", consistency_http),
    ):
        mean, p95 = statistics.mean(values), percentile(values, 0.95)
        target = ""
        if name.startswith("inclusion"):
            target = (
                f"< {INCLUSION_TARGET_MS:.0f} {'met' if p95 < INCLUSION_TARGET_MS else 'MISSED'}"
            )
        print(f"{name:<46} {mean:>6.2f} / {p95:>5.2f}   {target}")
    print(f"{'checkpoint after 10,000 new events (ms)':<46} {checkpoint_ms:>14.1f}")
    print(
        f"{'filling ' + format(args.events, ',') + ' events with their tree (s)':<46} "
        f"{fill_seconds:>14.0f}"
    )
    print(bundle_line)
    return 0


def bundle_benchmark(app: Any, engine: Engine, notary: Notary, bundle_module: Any) -> str:
    """1,000 events of one consumer, then the time to build their bundle."""
    from vrm_portal.consent import service as consent_service

    with Session(engine, expire_on_commit=False) as session:
        account = Account(email="bundle@example.invalid", locale="en")
        session.add(account)
        session.commit()
        for number in range(500):
            purpose = consent_service.find_purpose(session, "aurore-automobiles", "analytics")
            change = Change(CollectionMethod.PORTAL, "en", utcnow())
            consent_service.grant(
                session,
                notary,
                account,
                purpose,
                shown_version=purpose.current_version,
                change=change,
            )
            consent_service.withdraw(session, notary, account, purpose, change=change)
            session.commit()
            if number % 100 == 0:
                log(f"bundle consumer: {number * 2} events")
        subject_key = account.subject_key
    with app.app_context():
        service.sign_checkpoint(db.session, log_signer(), utcnow())
        db.session.commit()
        builder = getattr(bundle_module, "build_bundle", None)
        if builder is None:
            return "proof bundle: no build_bundle() in vrm_portal.log.bundle"
        started = time.perf_counter()
        data = builder(db.session, subject_key=subject_key)
        seconds = time.perf_counter() - started
    size = len(data) if isinstance(data, bytes | bytearray) else 0
    return f"{'proof bundle, 1,000 events (s / KiB)':<46} {seconds:>6.2f} / {size / 1024:>5.0f}"


if __name__ == "__main__":
    raise SystemExit(main())
