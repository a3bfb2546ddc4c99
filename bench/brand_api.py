"""Brand API benchmarks: one-consumer lookups under load, full syncs, first vs last page.

Run (see bench/README.md)::

    .venv/bin/python bench/brand_api.py                      # SQLite, temporary file
    .venv/bin/python bench/brand_api.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Every run works in its own scratch database, migrated with ``schema.upgrade``: a temporary
SQLite file, or on PostgreSQL a fresh ``vrm_bench_api_<random>`` database created on the server
the URL names (the URL's own database is only used to connect) and dropped, with
``WITH (FORCE)``, at the end.

The database is seeded with the demo brand group and ``--consumers`` (100,000) consumers of
``aurore-automobiles``, written with Core ``insert()`` executemany in batches (not the
service layer): verified accounts with a full profile, their relationship with the brand
(pairwise id), ``--consents`` granted consents each (email, SMS, post) and one
``consent.granted`` entry of the brand's change feed per consent (``seq`` gapless, and
``brands.feed_seq`` set to the last one). An API client is created with
``flask --app wsgi vrm create-client`` and the app is served by gunicorn with production
settings (``VRM_ENV=production``; a secret key, a receipt signing key, an http base URL,
mail to an outbox, ``VRM_API_RATE_LIMIT=off`` (no limit) and ``VRM_BENCH_ENDPOINTS=1``).

1. ``GET /api/v1/consumers/{consumer_id}`` driven by ``wrk`` on loopback, a random seeded
   consumer per request (Lua script), beside ``GET /api/v1/_bench/constant?bytes=N``: a
   constant JSON body of the same size as a lookup response, from the same app and server
   without any database access (the stack's ceiling). Target: lookup >= 60% of its req/s.
2. A full sync of the brand's consumers through ``/consumers`` and of its feed through
   ``/changes`` (``limit=1000``, one keep-alive ``requests.Session``), while a thread
   samples the gunicorn workers' RSS (``/proc/<pid>/status``) every 50 ms. Target:
   >= 20,000 items/s, and flat server memory (RSS at the end vs after the first 10%).
3. The first and the last page of each (``--page-samples`` timed requests each, alternated).
   Target: median(last) <= 1.5 x median(first): keyset pagination costs the same anywhere.

``--profile`` adds a cProfile of the same requests made in-process (Flask test client on
the same database) with the SQL statements timed: where a request's time goes.
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
import io
import json
import math
import os
import platform
import pstats
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import requests
from sqlalchemy import Engine, Table, event, insert, select, update
from sqlalchemy.orm import Session

from bench.scratch import Scratch, scratch_database
from vrm_portal import schema  # imports vrm_portal.all_models: every model is mapped
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
from vrm_portal.consent.receipts import generate_key_file
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.log.signing import generate_key_file as generate_log_key_file

BRAND = "aurore-automobiles"
SCOPES = "consumers:read changes:read"
#: The purposes granted to every seeded consumer, in this order (``--consents`` of them):
#: each uncovers profile fields (names + email, phone, postal address).
CONSENT_PURPOSES = ("email-offers", "sms-offers", "postal-offers")
PAGE_LIMIT = 1000

LOOKUP_TARGET = 0.60
SYNC_TARGET = 20_000.0
LAST_PAGE_TARGET = 1.5
#: RSS growth of the workers between 10% of a sync and its end above which memory is not
#: "flat" (one page of 1,000 items is a few MiB; holding the data set would be hundreds).
FLAT_GROWTH_LIMIT_MIB = 16.0
RSS_SAMPLE_SECONDS = 0.05
VENV_BIN = Path(sys.executable).parent
MIB = 1024 * 1024

GIVEN_NAMES = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Jade", "Louise", "Alice", "Emma", "Zoé",
    "Lucas", "Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Nathan", "Raphaël", "Adam", "Éric",
)  # fmt: skip
FAMILY_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
)  # fmt: skip
STREETS = (
    "rue de la République", "avenue Victor Hugo", "boulevard Voltaire", "rue des Lilas",
    "place de la Mairie", "chemin des Vignes", "rue Pasteur", "allée des Tilleuls",
)  # fmt: skip
CITIES = (
    ("75011", "Paris"), ("69003", "Lyon"), ("13006", "Marseille"), ("33000", "Bordeaux"),
    ("31000", "Toulouse"), ("44000", "Nantes"), ("67000", "Strasbourg"), ("59000", "Lille"),
)  # fmt: skip


def log(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def load_average() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


# ---- scratch database ---------------------------------------------------------------


def describe_engine(engine: Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            return f"SQLite {sqlite3.sqlite_version} (journal_mode={mode})"
        version = connection.exec_driver_sql("SHOW server_version").scalar()
        buffers = connection.exec_driver_sql("SHOW shared_buffers").scalar()
        return f"PostgreSQL {version} (shared_buffers={buffers})"


# ---- seeding ------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    brand_id: int
    consumers: int
    changes: int
    rows: int
    seconds: float


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def seed(engine: Engine, consumers: int, consents: int, batch: int, seed_value: int) -> Seeded:
    """The demo catalogue, then ``consumers`` consumers of BRAND with Core executemany."""
    started = time.perf_counter()
    with Session(engine) as session:
        load_demo_catalogue(session)
        session.commit()
    accounts, relationships = _table(Account), _table(BrandRelationship)
    states, changes = _table(ConsentState), _table(BrandChange)
    rng = random.Random(seed_value)
    now = utcnow()
    rows = seq = 0
    with engine.begin() as connection:
        brand_id = connection.scalar(select(Brand.id).where(Brand.slug == BRAND))
        assert brand_id is not None, f"the demo catalogue has no brand {BRAND!r}"
        wanted = CONSENT_PURPOSES[:consents]
        purposes = {
            key: (purpose_id, version, content_hash, validity)
            for key, purpose_id, version, content_hash, validity in connection.execute(
                select(
                    Purpose.key,
                    Purpose.id,
                    Purpose.current_version,
                    PurposeVersion.content_hash,
                    Purpose.validity_days,
                )
                .join(
                    PurposeVersion,
                    (PurposeVersion.purpose_id == Purpose.id)
                    & (PurposeVersion.version == Purpose.current_version),
                )
                .where(Purpose.brand_id == brand_id, Purpose.key.in_(wanted))
            )
        }
        missing = set(wanted) - set(purposes)
        assert not missing, f"{BRAND} has no purpose {sorted(missing)}"
        last_account_id = connection.scalar(select(Account.id).order_by(Account.id.desc())) or 0
        for start in range(0, consumers, batch):
            numbers = range(start, min(start + batch, consumers))
            # Known since the run's start minus a second per consumer: in creation order.
            created = {n: now - timedelta(seconds=consumers - n) for n in numbers}
            account_rows: list[dict[str, Any]] = []
            for n in numbers:
                postcode, city = rng.choice(CITIES)
                account_rows.append(
                    {
                        "email": f"consumer{n:07d}@bench.invalid",
                        "email_verified_at": created[n],
                        "password_hash": None,
                        "locale": "fr" if n % 3 else "en",
                        "given_name": rng.choice(GIVEN_NAMES),
                        "family_name": rng.choice(FAMILY_NAMES),
                        "phone": f"+336{n:08d}",
                        "postal_address": f"{rng.randint(1, 180)} {rng.choice(STREETS)}\n"
                        f"{postcode} {city}\nFrance",
                        "subject_key": secrets.token_hex(32),
                        "created_at": created[n],
                        "updated_at": created[n],
                    }
                )
            connection.execute(insert(accounts), account_rows)
            ids = {
                email: account_id
                for account_id, email in connection.execute(
                    select(Account.id, Account.email).where(Account.id > last_account_id)
                )
            }
            last_account_id = max(ids.values())
            relationship_rows: list[dict[str, Any]] = []
            state_rows: list[dict[str, Any]] = []
            change_rows: list[dict[str, Any]] = []
            for n, row in zip(numbers, account_rows, strict=True):
                account_id = ids[row["email"]]
                pairwise_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                relationship_rows.append(
                    {
                        "account_id": account_id,
                        "brand_id": brand_id,
                        "pairwise_id": pairwise_id,
                        "created_at": created[n],
                    }
                )
                for key in wanted:
                    purpose_id, version, content_hash, validity = purposes[key]
                    granted_at = created[n]
                    expires_at = granted_at + timedelta(days=validity)
                    seq += 1
                    state_rows.append(
                        {
                            "account_id": account_id,
                            "purpose_id": purpose_id,
                            "status": ConsentStatus.GRANTED.value,
                            "version": version,
                            "content_hash": content_hash,
                            "granted_at": granted_at,
                            "expires_at": expires_at,
                            "method": CollectionMethod.PORTAL.value,
                            "granted_despite_gpc": False,
                            "last_event_seq": None,
                            "updated_at": granted_at,
                        }
                    )
                    change_rows.append(
                        {
                            "brand_id": brand_id,
                            "seq": seq,
                            "kind": ChangeKind.CONSENT_GRANTED.value,
                            "pairwise_id": pairwise_id,
                            "occurred_at": granted_at,
                            "data": {
                                "purpose": key,
                                "version": version,
                                "method": CollectionMethod.PORTAL.value,
                                "expires_at": expires_at.isoformat(),
                            },
                        }
                    )
            connection.execute(insert(relationships), relationship_rows)
            connection.execute(insert(states), state_rows)
            connection.execute(insert(changes), change_rows)
            rows += len(account_rows) + len(relationship_rows) + len(state_rows) + len(change_rows)
        connection.execute(update(_table(Brand)).where(Brand.id == brand_id).values(feed_seq=seq))
    if engine.dialect.name == "postgresql":
        # What autovacuum would do a minute later anyway: statistics for the planner.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    return Seeded(brand_id, consumers, seq, rows, time.perf_counter() - started)


def pairwise_ids(engine: Engine, brand_id: int) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(BrandRelationship.pairwise_id).where(BrandRelationship.brand_id == brand_id)
            )
        )


# ---- the server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def app_environment(workdir: Path, database_url: str, port: int) -> dict[str, str]:
    """Production settings, minus what needs a real host: http base URL, mail to a file."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    key_file = workdir / "receipts.pem"
    if not key_file.exists():
        generate_key_file(key_file)
    log_key_file = key_file.with_name("log_signing_key.pem")
    if not log_key_file.exists():
        generate_log_key_file(log_key_file)
    environ.update(
        {
            "VRM_ENV": "production",
            "VRM_DATABASE_URL": database_url,
            "VRM_SECRET_KEY": secrets.token_urlsafe(48),
            "VRM_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "VRM_MAIL_BACKEND": "outbox",
            "VRM_INSTANCE_PATH": str(workdir / "instance"),
            "VRM_RECEIPT_SIGNING_KEY_FILE": str(key_file),
            "VRM_LOG_SIGNING_KEY_FILE": str(log_key_file),
            "VRM_OPERATOR_NAME": "Bench Group SAS",
            "VRM_OPERATOR_ADDRESS": "1 place du Banc, 69002 Lyon, France",
            "VRM_DPO_CONTACT": "dpo@bench.example",
            "VRM_SUPERVISORY_AUTHORITY_NAME": "CNIL",
            "VRM_SUPERVISORY_AUTHORITY_URL": "https://www.cnil.fr/",
            "VRM_API_RATE_LIMIT": "off",
            "VRM_BENCH_ENDPOINTS": "1",
        }
    )
    return environ


#: Used if config.py ever stops turning the per-client limit off for ``VRM_API_RATE_LIMIT=off``:
#: a limit the bench can never reach (the limiter still counts every request).
UNREACHABLE_RATE_LIMIT = "1000000000 per second"


def effective_rate_limit(environ: dict[str, str]) -> str:
    """The ``API_RATE_LIMIT`` the app will run with, read with the server's environment."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from config import load_config; print(repr(load_config()['API_RATE_LIMIT']))",
        ],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"cannot load the app's settings:\n{done.stderr}")
    return str(done.stdout.strip())


def create_client(environ: dict[str, str]) -> tuple[str, str]:
    command = [
        str(VENV_BIN / "flask"),
        "--app",
        "wsgi",
        "vrm",
        "create-client",
        "--brand",
        BRAND,
        "--scopes",
        SCOPES,
        "--json",
    ]
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=environ, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"create-client failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    for line in reversed(done.stdout.splitlines()):
        if line.strip().startswith("{"):
            answer = json.loads(line)
            return str(answer["client_id"]), str(answer["client_secret"])
    raise SystemExit(f"create-client printed no JSON:\n{done.stdout}")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def worker_pids(self) -> list[int]:
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            pass
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                # pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
                if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                    pids.append(int(entry.name))
        return pids

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-30:])
        except OSError:
            return ""


@contextmanager
def gunicorn(
    environ: dict[str, str], port: int, args: argparse.Namespace, workdir: Path
) -> Iterator[Server]:
    command = [
        str(VENV_BIN / "gunicorn"),
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    command.append("wsgi:app")
    log_path = workdir / "gunicorn.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environ, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited ({process.returncode}):\n{server.log_tail()}")
            try:
                if requests.get(f"{server.base_url}/healthz", timeout=10).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer in 60 s:\n{server.log_tail()}")
            time.sleep(0.2)
        # Every worker must have booted (imported the app), not just the first one.
        while len(server.worker_pids()) < args.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def access_token(base_url: str, client_id: str, client_secret: str) -> str:
    response = requests.post(
        f"{base_url}/oauth/token",
        auth=(client_id, client_secret),
        data={"grant_type": "client_credentials", "scope": SCOPES},
        timeout=30,
    )
    if response.status_code != 200:
        raise SystemExit(f"POST /oauth/token: {response.status_code} {response.text[:500]}")
    token: str = response.json()["access_token"]
    return token


# ---- 1. lookups under wrk -------------------------------------------------------------

WRK_SCRIPT = """\
-- Written by bench/brand_api.py. Arguments: mode (lookup | bare), random seed.
local ids = {}
for line in io.lines(%(ids_path)s) do ids[#ids + 1] = line end
local headers = {["Authorization"] = %(authorization)s, ["Accept"] = "application/json"}
local bare_path = %(bare_path)s
local mode = "lookup"

function init(args)
  mode = args[1] or "lookup"
  math.randomseed(tonumber(args[2]) or os.time())
end

function request()
  -- The same work on both sides: pick a random consumer.
  local path = "/api/v1/consumers/" .. ids[math.random(#ids)]
  if mode == "bare" then path = bare_path end
  return wrk.format("GET", path, headers)
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "p50_us": %%d, ' ..
    '"p90_us": %%d, "p99_us": %%d, "max_us": %%d, "non_2xx": %%d, "connect_errors": %%d, ' ..
    '"read_errors": %%d, "write_errors": %%d, "timeouts": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    response_bytes: int

    @property
    def rate(self) -> float:
        return rate(self.requests, self.seconds)


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a valid Lua string


def write_wrk_script(workdir: Path, ids: Sequence[str], token: str, bare_path: str) -> Path:
    ids_path = workdir / "consumer_ids.txt"
    ids_path.write_text("\n".join(ids) + "\n")
    script = workdir / "lookups.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "ids_path": lua_string(str(ids_path)),
            "authorization": lua_string(f"Bearer {token}"),
            "bare_path": lua_string(bare_path),
        }
    )
    return script


def run_wrk(
    base_url: str, script: Path, mode: str, seconds: int, connections: int, threads: int
) -> WrkResult:
    command = [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        f"--script={script}",
        base_url,
        "--",
        mode,
        str(random.randrange(1, 2**31)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures = json.loads(line.removeprefix("BENCH_JSON "))
            break
    else:
        raise SystemExit(f"wrk gave no figures ({done.returncode}):\n{done.stdout}{done.stderr}")
    errors = sum(
        figures[key]
        for key in ("non_2xx", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return WrkResult(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=errors,
        response_bytes=figures["bytes"],
    )


def lookup_body_size(base_url: str, token: str, ids: Sequence[str]) -> tuple[int, dict[str, Any]]:
    """Mean body size of a sample of lookups (they differ by a few bytes), and one body."""
    sizes = []
    example: dict[str, Any] = {}
    with requests.Session() as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for consumer_id in random.sample(list(ids), min(50, len(ids))):
            response = client.get(f"{base_url}/api/v1/consumers/{consumer_id}", timeout=30)
            if response.status_code != 200:
                raise SystemExit(
                    f"GET /api/v1/consumers/{consumer_id}: {response.status_code} "
                    f"{response.text[:500]}"
                )
            sizes.append(len(response.content))
            example = response.json()
    return round(statistics.mean(sizes)), example


# ---- 2. full syncs, with the workers' memory --------------------------------------------


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class MemorySampler:
    """Samples the summed RSS of the workers every 50 ms, with the sync's progress."""

    pids: list[int]
    progress: int = 0
    samples: list[tuple[int, int]] = field(default_factory=list)  # (progress, KiB)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        self.samples.append((self.progress, sum(rss_kib(pid) for pid in self.pids)))

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_SECONDS):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


@dataclass(frozen=True)
class SyncResult:
    endpoint: str
    items: int
    pages: int
    seconds: float
    #: The query string of each page that returned items, in order.
    page_queries: list[dict[str, str]]
    last_page_items: int
    first_page_items: int
    rss_before_kib: int
    rss_at_10_kib: int
    rss_end_kib: int
    rss_peak_kib: int
    problem: str | None

    @property
    def rate(self) -> float:
        return rate(self.items, self.seconds)

    @property
    def growth_mib(self) -> float:
        return (self.rss_end_kib - self.rss_at_10_kib) / 1024


def full_sync(
    base_url: str, token: str, endpoint: str, expected: int, pids: list[int]
) -> SyncResult:
    """Every page of ``/consumers`` (``cursor``) or ``/changes`` (``after``), in order."""
    cursor_name = "cursor" if endpoint == "consumers" else "after"
    url = f"{base_url}/api/v1/{endpoint}"
    queries: list[dict[str, str]] = []
    sizes: list[int] = []
    seen_seq = 0
    problem: str | None = None
    items = pages = 0
    with requests.Session() as client:
        client.headers["Authorization"] = f"Bearer {token}"
        client.get(url, params={"limit": "1"}, timeout=60).raise_for_status()  # warm
        with MemorySampler(pids) as sampler:
            started = time.perf_counter()
            params = {"limit": str(PAGE_LIMIT)}
            while True:
                response = client.get(url, params=params, timeout=60)
                pages += 1
                if response.status_code != 200:
                    problem = f"page {pages}: {response.status_code} {response.text[:300]}"
                    break
                page = response.json()
                batch = page["items"]
                if batch:
                    queries.append(dict(params))
                    sizes.append(len(batch))
                if endpoint == "changes":
                    for item in batch:
                        if item["seq"] != seen_seq + 1 and problem is None:
                            problem = f"seq {item['seq']} after {seen_seq}"
                        seen_seq = item["seq"]
                items += len(batch)
                sampler.progress = items
                cursor = page.get("next_cursor")
                if not batch or cursor is None:
                    break
                params = {"limit": str(PAGE_LIMIT), cursor_name: str(cursor)}
            seconds = time.perf_counter() - started
    if problem is None and items != expected:
        problem = f"{items:,} items, expected {expected:,}"
    samples = sampler.samples
    tenth = next((kib for done, kib in samples if done >= expected / 10), samples[-1][1])
    return SyncResult(
        endpoint=endpoint,
        items=items,
        pages=pages,
        seconds=seconds,
        page_queries=queries,
        first_page_items=sizes[0] if sizes else 0,
        last_page_items=sizes[-1] if sizes else 0,
        rss_before_kib=samples[0][1],
        rss_at_10_kib=tenth,
        rss_end_kib=samples[-1][1],
        rss_peak_kib=max(kib for _, kib in samples),
        problem=problem,
    )


# ---- 3. first page vs last page -------------------------------------------------------


@dataclass(frozen=True)
class PageTimes:
    endpoint: str
    first_ms: list[float]
    last_ms: list[float]

    @property
    def first(self) -> float:
        return statistics.median(self.first_ms)

    @property
    def last(self) -> float:
        return statistics.median(self.last_ms)


def time_pages(base_url: str, token: str, sync: SyncResult, samples: int) -> PageTimes:
    url = f"{base_url}/api/v1/{sync.endpoint}"
    first, last = sync.page_queries[0], sync.page_queries[-1]
    timings: dict[str, list[float]] = {"first": [], "last": []}
    with requests.Session() as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for query in (first, last):  # warm
            client.get(url, params=query, timeout=60).raise_for_status()
        for number in range(samples):
            order = ("first", "last") if number % 2 == 0 else ("last", "first")
            for which in order:
                query = first if which == "first" else last
                started = time.perf_counter()
                response = client.get(url, params=query, timeout=60)
                _ = response.content
                timings[which].append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
    return PageTimes(sync.endpoint, timings["first"], timings["last"])


# ---- --profile: the same requests in-process -------------------------------------------


def profile_requests(
    environ: dict[str, str],
    ids: Sequence[str],
    token: str,
    body_size: int,
    syncs: Sequence[SyncResult],
    lookups: int,
) -> str:
    """cProfile + per-statement SQL time of lookups, bare requests and pages, in-process."""
    from flask import Flask

    from vrm_portal import create_app

    os.environ["VRM_ENV"] = "production"
    app: Flask = create_app(
        {
            "DATABASE_URL": environ["VRM_DATABASE_URL"],
            "SECRET_KEY": environ["VRM_SECRET_KEY"],
            "PUBLIC_BASE_URL": environ["VRM_PUBLIC_BASE_URL"],
            "MAIL_BACKEND": "outbox",
            "MAIL_OUTBOX_DIR": str(Path(environ["VRM_INSTANCE_PATH"]) / "outbox"),
            "RECEIPT_SIGNING_KEY_FILE": environ["VRM_RECEIPT_SIGNING_KEY_FILE"],
            "LOG_SIGNING_KEY_FILE": environ["VRM_LOG_SIGNING_KEY_FILE"],
            **{
                name: environ[f"VRM_{name}"]
                for name in (
                    "OPERATOR_NAME",
                    "OPERATOR_ADDRESS",
                    "DPO_CONTACT",
                    "SUPERVISORY_AUTHORITY_NAME",
                    "SUPERVISORY_AUTHORITY_URL",
                )
            },
            "API_RATE_LIMIT": "off",
            "BENCH_ENDPOINTS": True,
        }
    )
    engine: Engine = app.extensions["vrm_db"].engine
    statements: dict[str, list[float]] = defaultdict(list)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        began = conn.info["bench_started"].pop()
        statements[" ".join(statement.split())].append(time.perf_counter() - began)

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    sample = [random.choice(ids) for _ in range(lookups)]
    bare = f"/api/v1/_bench/constant?bytes={body_size}"
    pages = [(s.endpoint, q) for s in syncs for q in (s.page_queries[0], s.page_queries[-1])]

    def lookups_pass() -> None:
        for consumer_id in sample:
            response = client.get(f"/api/v1/consumers/{consumer_id}", headers=headers)
            assert response.status_code == 200

    def bare_pass() -> None:
        for _ in sample:
            assert client.get(bare, headers=headers).status_code == 200

    def pages_pass() -> None:
        for endpoint, query in pages:
            for _ in range(5):
                response = client.get(f"/api/v1/{endpoint}", query_string=query, headers=headers)
                assert response.status_code == 200

    out = io.StringIO()
    for name, work, count in (
        (f"{lookups} lookups GET /api/v1/consumers/<id>", lookups_pass, lookups),
        (f"{lookups} bare GET {bare}", bare_pass, lookups),
        ("first and last pages, 5 each", pages_pass, 5 * len(pages)),
    ):
        work()  # warm: statement caches, imports
        statements.clear()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        work()
        profiler.disable()
        elapsed = time.perf_counter() - started
        out.write(f"\n=== {name}: {elapsed / count * 1000:.3f} ms per request in-process\n")
        if statements:
            total = sum(sum(times) for times in statements.values())
            out.write(
                f"SQL: {sum(len(t) for t in statements.values()) / count:.1f} statements, "
                f"{total / count * 1000:.3f} ms per request (driver execute, no fetch)\n"
            )
            ranked = sorted(statements.items(), key=lambda item: -sum(item[1]))[:8]
            for statement, times in ranked:
                out.write(
                    f"  {sum(times) / count * 1000:7.3f} ms/req  {len(times) / count:5.1f}x  "
                    f"{statement[:220]}\n"
                )
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(22)
        stats.sort_stats("cumulative").print_stats(r"vrm_portal|flask|werkzeug|sqlalchemy", 30)
        out.write(text.getvalue())
    return out.getvalue()


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


def print_table(title: str, lines: Sequence[Line], notes: Sequence[str]) -> None:
    header = Line("Benchmark", "Measured", "Baseline", "Baseline", "Ratio", "Target", "Result")
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


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


# ---- main ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Brand API benchmarks (lookups under wrk; full syncs; first vs last page).",
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the server to use (a scratch database is created on it); "
        "default: a temporary SQLite file",
    )
    parser.add_argument("--consumers", type=int, default=100_000, help="consumers to seed")
    parser.add_argument(
        "--consents",
        type=int,
        choices=range(1, len(CONSENT_PURPOSES) + 1),
        default=2,
        help="granted consents (and feed entries) per consumer: email, SMS, post",
    )
    parser.add_argument("--batch", type=int, default=10_000, help="seeding insert batch")
    parser.add_argument("--duration", type=int, default=15, help="seconds of each wrk run")
    parser.add_argument("--warm-up", type=int, default=3, help="seconds of untimed wrk first")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--worker-class", choices=("sync", "gthread"), default="sync", help="gunicorn workers"
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument(
        "--page-samples", type=int, default=40, help="timed requests of each first/last page"
    )
    parser.add_argument("--seed", type=int, default=2024, help="seed of the generated data")
    parser.add_argument("--skip-wrk", action="store_true", help="skip the lookup benchmark")
    parser.add_argument("--skip-sync", action="store_true", help="skip syncs and pages")
    parser.add_argument("--skip-pages", action="store_true", help="skip first vs last page")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the same requests in-process (cProfile + SQL statement times)",
    )
    parser.add_argument(
        "--profile-lookups", type=int, default=2000, help="lookups (and bare) to profile"
    )
    args = parser.parse_args(argv)
    if args.consumers < 1 or args.batch < 1 or args.page_samples < 1:
        parser.error("--consumers, --batch and --page-samples must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.skip_wrk and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: make bench-api installs it, or use --skip-wrk")
    with (
        scratch_database(args.database_url, "api") as scratch,
        tempfile.TemporaryDirectory(prefix="bench_api_work_") as work,
    ):
        engine = create_db_engine(scratch.url)
        try:
            return run(engine, scratch, Path(work), args)
        finally:
            engine.dispose()


def run(engine: Engine, scratch: Scratch, workdir: Path, args: argparse.Namespace) -> int:
    overall = time.perf_counter()
    load_at_start = load_average()
    log(f"scratch database: {scratch.label}")
    schema.upgrade(engine)
    engine_text = describe_engine(engine)
    log(f"seeding {args.consumers:,} consumers of {BRAND}")
    seeded = seed(engine, args.consumers, args.consents, args.batch, args.seed)
    ids = pairwise_ids(engine, seeded.brand_id)
    engine.dispose()  # the server gets the database to itself

    lines: list[Line] = []
    notes: list[str] = [
        f"Seeded {seeded.consumers:,} consumers of {BRAND} with {args.consents} granted "
        f"consent(s) each ({', '.join(CONSENT_PURPOSES[: args.consents])}) and "
        f"{seeded.changes:,} feed entries: {seeded.rows:,} rows in {seeded.seconds:.1f} s "
        f"({rate(seeded.rows, seeded.seconds):,.0f} rows/s, Core executemany, batches of "
        f"{args.batch:,}; demo catalogue included"
        + ("; then VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "")
        + ")."
    ]
    port = free_port()
    environ = app_environment(workdir, scratch.url, port)
    limit = effective_rate_limit(environ)
    if limit != "'off'":
        notes.append(
            f"NOTE: VRM_API_RATE_LIMIT=off gives API_RATE_LIMIT={limit}; the bench sets "
            f'"{UNREACHABLE_RATE_LIMIT}" instead, so '
            "the limiter still counts each request."
        )
        environ["VRM_API_RATE_LIMIT"] = UNREACHABLE_RATE_LIMIT
    client_id, client_secret = create_client(environ)
    setup = f"gunicorn {args.workers} {args.worker_class} workers" + (
        f" x {args.threads} threads" if args.worker_class == "gthread" else ""
    )
    profile: str | None = None
    syncs: list[SyncResult] = []
    ok = True
    with gunicorn(environ, port, args, workdir) as server:
        token = access_token(server.base_url, client_id, client_secret)
        body_size, example = lookup_body_size(server.base_url, token, ids)
        bare_path = f"/api/v1/_bench/constant?bytes={body_size}"
        check = requests.get(server.base_url + bare_path, timeout=10)
        if check.status_code != 200 or len(check.content) != body_size:
            raise SystemExit(f"{bare_path}: {check.status_code}, {len(check.content)} bytes")
        notes.append(
            f"Server: {setup} (VRM_ENV=production, no access log) on 127.0.0.1; "
            f"a lookup response is {body_size:,} bytes on average, e.g. "
            f"{json.dumps(example, ensure_ascii=False)[:160]}..."
        )

        if not args.skip_wrk:
            script = write_wrk_script(workdir, ids, token, bare_path)
            wrk = {"lookup": ("GET /api/v1/consumers/{random id}"), "bare": bare_path}
            results: dict[str, WrkResult] = {}
            for mode in ("lookup", "bare"):
                if args.warm_up > 0:
                    log(f"wrk warm-up, {mode}, {args.warm_up} s")
                    run_wrk(
                        server.base_url,
                        script,
                        mode,
                        args.warm_up,
                        args.connections,
                        args.wrk_threads,
                    )
            for mode in ("lookup", "bare"):
                log(f"wrk {mode}: {wrk[mode]}, {args.duration} s")
                results[mode] = run_wrk(
                    server.base_url,
                    script,
                    mode,
                    args.duration,
                    args.connections,
                    args.wrk_threads,
                )
            lookup, bare = results["lookup"], results["bare"]
            ratio = lookup.rate / bare.rate
            lines.append(
                Line(
                    "lookup req/s, GET /consumers/{id}",
                    f"{lookup.rate:,.0f}",
                    f"bare constant JSON, {body_size:,} B",
                    f"{bare.rate:,.0f}",
                    f"{ratio:.2f}",
                    f">= {LOOKUP_TARGET:.2f}",
                    verdict(ratio >= LOOKUP_TARGET and lookup.errors == 0),
                )
            )
            for label, pick in (("p50", "p50_ms"), ("p99", "p99_ms")):
                mine, theirs = getattr(lookup, pick), getattr(bare, pick)
                lines.append(
                    Line(
                        f"lookup latency {label}",
                        f"{mine:.2f} ms",
                        f"bare latency {label}",
                        f"{theirs:.2f} ms",
                        f"{mine / theirs:.2f}",
                        "info",
                        "-",
                    )
                )
            notes.append(
                f"wrk: {args.wrk_threads} thread(s), {args.connections} connections, "
                f"{args.duration} s per side after {args.warm_up} s of warm-up each; "
                f"random ids among {len(ids):,}. Lookups: {lookup.requests:,} requests, "
                f"{lookup.errors} errors, p90 {lookup.p90_ms:.2f} ms. Bare: "
                f"{bare.requests:,} requests, {bare.errors} errors, p90 {bare.p90_ms:.2f} ms."
            )
            ok = ok and lookup.errors == 0 and bare.errors == 0

        if not args.skip_sync:
            pids = server.worker_pids()
            for endpoint, expected in (
                ("consumers", seeded.consumers),
                ("changes", seeded.changes),
            ):
                log(f"full sync of /{endpoint} ({expected:,} items, limit={PAGE_LIMIT})")
                sync = full_sync(server.base_url, token, endpoint, expected, pids)
                syncs.append(sync)
                ok = ok and sync.problem is None
                consumers_rate = rate(seeded.consumers, sync.seconds)
                lines.append(
                    Line(
                        f"full sync /{endpoint}, items/s",
                        f"{sync.rate:,.0f}",
                        f"{sync.items:,} items, {sync.pages} pages, {sync.seconds:.1f} s",
                        "",
                        "",
                        f">= {SYNC_TARGET:,.0f}/s",
                        verdict(sync.rate >= SYNC_TARGET and sync.problem is None),
                    )
                )
                if endpoint == "changes":
                    lines.append(
                        Line(
                            "full sync /changes, consumers/s",
                            f"{consumers_rate:,.0f}",
                            f"{args.consents} entries per consumer",
                            "",
                            "",
                            "info",
                            "-",
                        )
                    )
                lines.append(
                    Line(
                        f"  workers' RSS during /{endpoint} sync",
                        f"peak {mib(sync.rss_peak_kib)}",
                        f"at 10%: {mib(sync.rss_at_10_kib)}, end: {mib(sync.rss_end_kib)}",
                        f"{sync.growth_mib:+.1f} MiB",
                        "",
                        f"flat (< {FLAT_GROWTH_LIMIT_MIB:.0f} MiB)",
                        verdict(sync.growth_mib < FLAT_GROWTH_LIMIT_MIB),
                    )
                )
                notes.append(
                    f"/{endpoint}: {sync.items:,} items in {sync.seconds:.2f} s; workers' RSS "
                    f"(sum of {len(pids)}) {mib(sync.rss_before_kib)} before the sync, "
                    f"sampled every {RSS_SAMPLE_SECONDS * 1000:.0f} ms"
                    + (f"; PROBLEM: {sync.problem}" if sync.problem else "")
                )
            if not args.skip_pages:
                for sync in syncs:
                    if not sync.page_queries:
                        continue
                    log(f"first vs last page of /{sync.endpoint}, {args.page_samples} each")
                    times = time_pages(server.base_url, token, sync, args.page_samples)
                    ratio = times.last / times.first
                    lines.append(
                        Line(
                            f"last page /{sync.endpoint} (median)",
                            f"{times.last:.1f} ms",
                            "first page (median)",
                            f"{times.first:.1f} ms",
                            f"{ratio:.2f}",
                            f"<= {LAST_PAGE_TARGET:.2f}",
                            verdict(ratio <= LAST_PAGE_TARGET),
                        )
                    )
                    notes.append(
                        f"/{sync.endpoint} pages: first {sync.first_page_items:,} items, last "
                        f"{sync.last_page_items:,} items ({sync.page_queries[-1]}); "
                        f"{args.page_samples} requests each, alternated; p90 first "
                        f"{percentile(times.first_ms, 90):.1f} ms, last "
                        f"{percentile(times.last_ms, 90):.1f} ms."
                    )
        gunicorn_log = server.log_tail()

    if args.profile:
        log("profiling in-process (cProfile, SQL statement times)")
        profile = profile_requests(
            environ, ids, token, body_size, syncs, max(1, args.profile_lookups)
        )
    if gunicorn_log.strip():
        notes.append("gunicorn log (tail):\n" + gunicorn_log)
    notes.append(
        f"Total run time {time.perf_counter() - overall:.0f} s on {os.cpu_count()} CPUs; "
        f"load average at start {load_at_start}, at end {load_average()} (wrk and the server "
        "share the machine; other work on it makes the figures noisier)."
    )
    print_table(
        f"Brand API benchmark - {engine_text}, {setup}, Python {platform.python_version()}, "
        f"scratch database {scratch.label}",
        lines,
        notes,
    )
    if profile:
        print("In-process profile (Flask test client, same database):")
        print(profile)
    return 0 if ok else 1


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[index]


if __name__ == "__main__":
    sys.exit(main())
