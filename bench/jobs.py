"""Job engine benchmark: jobs per second through Huey beside the same work done inline.

Run (see bench/README.md)::

    .venv/bin/python bench/jobs.py                       # SQLite database, both storages
    .venv/bin/python bench/jobs.py --noop-jobs 500 --email-jobs 300      # quick
    .venv/bin/python bench/jobs.py --storages sqlite --profile           # + where time goes
    .venv/bin/python bench/jobs.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Two kinds of work:

- ``noop``: the ``jobs.noop`` job (``vrm_portal/jobs/diagnostics.py``). Inline it is an
  empty loop, so its "vs inline" only says that all of the engine's cost is overhead.
- ``email``: one ``verify_email`` message to a local SMTP sink (aiosmtpd in a process
  of its own, counting what it accepts). Inline: one loop in this process, in an app
  context, ``mail.render_email`` (lazy subject, a job id as Message-ID) then
  ``mail.deliver`` (one SMTP connection per message, as the ``mail.send`` job does).
  Through the engine: ``mail.send_later``, as the registration page calls it.

Through the engine, N jobs (``--noop-jobs`` 2000, ``--email-jobs`` 1000) are enqueued
as requests would: ``--batch`` (100) jobs per app context and transaction (``enqueue``
/ ``send_later``, then ``db.commit()``, which hands the ids to Huey after the commit),
while the production worker runs: a subprocess ``flask --app wsgi vrm worker
--workers 2`` with the same settings in its environment (schedules on, as in
production). The time runs from the first enqueue until every job row of the run is
``done`` (polled every 50 ms on a read-only connection); "enqueue s" is the part spent
enqueueing. Huey's storage is, in turn, the embedded default (a fresh ``SqliteStorage``
file) and Redis (``--redis-url``, db 13 by default: that db, and only that db, is
flushed before and after, and the bench refuses a db holding keys other than Huey's);
the queue name (``JOBS_QUEUE``) is the run's own either way.

The inline loops run before the first storage, between the storages and after the
last; each engine run is compared with the mean of the inline runs just before and
after it (the load of a shared machine moves). A "run_job loop" row runs
``--loop-jobs`` (200) committed job rows with ``JobEngine.run_now`` in one loop in this
process: the jobs table's part of a job (claim, handler, done) without Huey, one thread.
"CPU ms/job" is the user + system CPU of this process, the sink and (engine rows) the
worker per job, from ``getrusage`` and ``/proc/<pid>/stat``. The SMTP sink's count must
grow by exactly the number of emails of each run.

Every run works in a scratch database (``bench/scratch.py``: a temporary SQLite file,
or a ``vrm_bench_jobs_<random>`` database on the PostgreSQL server of
``--database-url``) migrated with ``schema.upgrade``, and a temporary instance folder.
The app is built with ``create_app`` (development settings, ``MAIL_BACKEND=smtp``);
its INFO logs (one line per email, Huey's per task) go to files, as they would in
production (``--log-dir`` keeps them). A warm-up job of each kind goes through each
worker first.

``--profile`` adds, after the figures, one run of ``--profile-work`` (email) per storage
with the worker's threads under cProfile (the same CLI, run through a wrapper), the
enqueueing side in this process, and the inline loop: the top functions are printed.
Profiling slows the worker, so those runs are not in the table.
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
import logging
import os
import platform
import pstats
import resource
import secrets
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url

from bench.scratch import scratch_database

WORKS = ("noop", "email")
LOOP_LABEL = "run_job loop (no Huey, 1 thread)"
KINDS = {"noop": "jobs.noop", "email": "mail.send"}
POLL_SECONDS = 0.05
#: No job of the run finished for this long: the run is stuck; give up.
STALL_SECONDS = 60.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of this process (None) or of process ``pid`` (Linux)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int | None]) -> Callable[[], float]:
    """CPU seconds used so far by these processes together (None: this one)."""
    return lambda: sum(process_cpu_seconds(pid) for pid in pids)


@dataclass(frozen=True)
class Measured:
    seconds: float
    #: CPU seconds of the processes involved (this one, the sink, the worker if any).
    cpu: float
    #: Through the engine: the part of ``seconds`` spent enqueueing.
    enqueue_seconds: float | None = None


# ---- the SMTP sink: a process of its own ----------------------------------------------


def run_smtp_sink() -> None:
    """Accept and count messages; print ``port N``, then answer ``count`` on stdin."""
    from aiosmtpd.controller import Controller

    class Counter:
        def __init__(self) -> None:
            self.count = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.count += 1
            return "250 Message accepted for delivery"

    counter = Counter()
    port = free_port()
    # A fixed server_hostname: otherwise aiosmtpd looks up the FQDN on every connection.
    controller = Controller(
        counter, hostname="127.0.0.1", port=port, server_hostname="sink.bench.invalid"
    )
    controller.start()
    print(f"port {port}", flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            print(counter.count, flush=True)
    controller.stop()


class SmtpSink:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--smtp-sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            raise SystemExit(f"the SMTP sink did not start: {line!r}")
        self.port = int(line[1])

    def count(self) -> int:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---- settings shared by this process and the worker ----------------------------------


@dataclass(frozen=True)
class Settings:
    database_url: str
    instance: Path
    smtp_port: int
    secret_key: str
    #: Huey's queue name, the bench's own (no other portal or test run takes its jobs).
    queue: str

    def overrides(self, jobs_url: str) -> dict[str, Any]:
        return {
            "DATABASE_URL": self.database_url,
            "JOBS_URL": jobs_url,
            "JOBS_QUEUE": self.queue,
            "MAIL_BACKEND": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": self.smtp_port,
            "SMTP_TLS": "none",
            "SMTP_USERNAME": None,
            "MAIL_OUTBOX_DIR": str(self.instance / "outbox"),
            "RECEIPT_SIGNING_KEY_FILE": str(self.instance / "receipt_signing_key.pem"),
            "SECRET_KEY": self.secret_key,
        }

    def environment(self, jobs_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "VRM_ENV": "development",
                "VRM_INSTANCE_PATH": str(self.instance),
                "VRM_DATABASE_URL": self.database_url,
                "VRM_JOBS_URL": jobs_url,
                "VRM_JOBS_QUEUE": self.queue,
                "VRM_MAIL_BACKEND": "smtp",
                "VRM_SMTP_HOST": "127.0.0.1",
                "VRM_SMTP_PORT": str(self.smtp_port),
                "VRM_SMTP_TLS": "none",
                "VRM_RECEIPT_SIGNING_KEY_FILE": str(self.instance / "receipt_signing_key.pem"),
                "VRM_SECRET_KEY": self.secret_key,
            }
        )
        env.pop("VRM_SMTP_USERNAME", None)
        env.pop("VRM_SMTP_PASSWORD", None)
        return env


# ---- the worker: `flask --app wsgi vrm worker` in a subprocess -------------------------


def run_profiled_worker(workers: int, profile_to: str) -> None:
    """``flask --app wsgi vrm worker``, the same CLI in this process, with every thread
    under cProfile; the merged profile is written to ``profile_to`` when it stops."""
    import threading

    from flask.cli import main as flask_main

    profiles: list[cProfile.Profile] = []
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    sys.argv = ["flask", "--app", "wsgi", "vrm", "worker", "--workers", str(workers)]
    try:
        flask_main()
    except SystemExit:
        pass
    finally:
        stats = None
        for profile in profiles:
            profile.create_stats()
            if not profile.stats:  # type: ignore[attr-defined]
                continue
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        if stats is not None:
            stats.dump_stats(profile_to)


class Worker:
    """The production worker, ``flask --app wsgi vrm worker``, in a subprocess."""

    def __init__(
        self, env: dict[str, str], workers: int, log_path: Path, profile_to: Path | None = None
    ) -> None:
        if profile_to is None:
            command = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "vrm"]
            command += ["worker", "--workers", str(workers)]
        else:
            command = [sys.executable, str(Path(__file__).resolve()), "--profiled-worker"]
            command += ["--workers", str(workers), "--profile-to", str(profile_to)]
        self.log_path = log_path
        self.log_file = log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT
        )

    def check(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(
                f"the worker exited with status {self.process.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """SIGINT: Huey's graceful stop (the running jobs finish), as Ctrl-C does."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


# ---- measuring ---------------------------------------------------------------------------


SUBJECT = "Confirm your email address"


def email_context() -> dict[str, Any]:
    """What the registration page passes for ``verify_email`` (a fresh link each time)."""
    return {
        "link": f"http://127.0.0.1:5000/verify-email/{secrets.token_urlsafe(32)}",
        "expires_hours": 48,
    }


def inline(app: Any, work: str, n: int, cpu: Callable[[], float]) -> Measured:
    """The work of ``n`` jobs in one loop, without the engine."""
    from flask_babel import lazy_gettext

    from vrm_portal.jobs.service import new_job_id
    from vrm_portal.mail import deliver, render_email

    if work == "noop":
        cpu_before, started = cpu(), time.perf_counter()
        for _ in range(n):
            pass
        return Measured(time.perf_counter() - started, cpu() - cpu_before)
    with app.app_context():
        cpu_before, started = cpu(), time.perf_counter()
        for i in range(n):
            message = render_email(
                f"consumer-{i}@bench.example",
                lazy_gettext(SUBJECT),
                "verify_email",
                locale=None,
                time_zone=None,
                message_id=new_job_id(),
                **email_context(),
            )
            deliver(message)
        return Measured(time.perf_counter() - started, cpu() - cpu_before)


def enqueue_jobs(app: Any, work: str, n: int, batch: int, *, dispatch: bool = True) -> list[str]:
    """``n`` jobs, ``batch`` per app context and transaction, as requests enqueue them.

    ``dispatch=False``: the rows only, not handed to the engine (``run_job_loop``)."""
    from flask_babel import lazy_gettext

    from vrm_portal.extensions import db
    from vrm_portal.jobs.service import PENDING_KEY, enqueue
    from vrm_portal.mail import send_later

    ids = []
    for start in range(0, n, batch):
        with app.app_context():
            for i in range(start, min(n, start + batch)):
                if work == "noop":
                    ids.append(enqueue(db.session, "jobs.noop", {}))
                else:
                    ids.append(
                        send_later(
                            f"consumer-{i}@bench.example",
                            lazy_gettext(SUBJECT),
                            "verify_email",
                            locale=None,
                            **email_context(),
                        )
                    )
            if not dispatch:
                db.session.info.pop(PENDING_KEY, None)
            db.commit()
    return ids


def run_job_loop(
    app: Any, work: str, n: int, batch: int, sink: SmtpSink, cpu: Callable[[], float]
) -> Measured:
    """``n`` committed job rows run with ``JobEngine.run_now`` in one loop, in this
    thread: the jobs table's part of a job (claim, handler, done), without Huey."""
    ids = enqueue_jobs(app, work, n, batch, dispatch=False)
    engine = app.extensions["vrm_jobs"]
    sent_before = sink.count()
    cpu_before, started = cpu(), time.perf_counter()
    for job_id in ids:
        outcome = engine.run_now(job_id)
        if outcome.status != "done":
            raise SystemExit(f"run_now({job_id}) ({work}): {outcome}")
    measured = Measured(time.perf_counter() - started, cpu() - cpu_before)
    sent = sink.count() - sent_before
    if sent != (n if work == "email" else 0):
        raise SystemExit(f"run_job loop ({work}): the SMTP sink received {sent} messages")
    clear_jobs(app, KINDS[work])
    return measured


def job_counts(app: Any, kind: str) -> dict[str, int]:
    from vrm_portal.extensions import db
    from vrm_portal.jobs.models import Job

    with app.app_context(), db.engine.connect() as connection:
        connection = connection.execution_options(vrm_read_only=True)
        rows = connection.execute(
            select(Job.status, func.count()).where(Job.kind == kind).group_by(Job.status)
        ).all()
        connection.rollback()
    return {status: count for status, count in rows}


def last_errors(app: Any, kind: str) -> list[str]:
    from vrm_portal.extensions import db
    from vrm_portal.jobs.models import Job

    with app.app_context(), db.engine.connect() as connection:
        connection = connection.execution_options(vrm_read_only=True)
        errors = connection.scalars(
            select(Job.last_error).where(Job.kind == kind, Job.last_error.is_not(None)).limit(3)
        ).all()
        connection.rollback()
    return [str(error) for error in errors]


def clear_jobs(app: Any, kind: str) -> None:
    from vrm_portal.extensions import db
    from vrm_portal.jobs.models import Job

    with app.app_context(), db.engine.begin() as connection:
        connection.execute(delete(Job).where(Job.kind == kind))


def through_engine(
    app: Any,
    work: str,
    n: int,
    batch: int,
    worker: Worker,
    sink: SmtpSink,
    cpu: Callable[[], float],
    enqueue_profile: cProfile.Profile | None = None,
) -> Measured:
    """Enqueue ``n`` jobs and wait until every one is ``done``."""
    kind = KINDS[work]
    clear_jobs(app, kind)
    sent_before = sink.count()
    cpu_before, started = cpu(), time.perf_counter()
    if enqueue_profile is not None:
        enqueue_profile.enable()
    enqueue_jobs(app, work, n, batch)
    if enqueue_profile is not None:
        enqueue_profile.disable()
    enqueued = time.perf_counter()
    done, last_progress, progress_at = 0, -1, time.perf_counter()
    errors_checked = progress_at
    while True:
        counts = job_counts(app, kind)
        done = counts.get("done", 0)
        if done >= n:
            break
        now = time.perf_counter()
        retried = False
        if now - errors_checked > 1:  # a retry leaves its error on a queued row
            retried, errors_checked = bool(last_errors(app, kind)), now
        if counts.get("failed") or retried:
            raise SystemExit(
                f"{work} jobs failed or retried: {counts}\n"
                + "\n".join(last_errors(app, kind))
                + f"\nworker log:\n{worker.tail()}"
            )
        if done != last_progress:
            last_progress, progress_at = done, now
        elif now - progress_at > STALL_SECONDS:
            raise SystemExit(
                f"{work}: no job finished for {STALL_SECONDS:.0f} s ({counts})\n"
                f"worker log:\n{worker.tail()}"
            )
        worker.check()
        time.sleep(POLL_SECONDS)
    finished, cpu_after = time.perf_counter(), cpu()
    sent = sink.count() - sent_before
    expected = n if work == "email" else 0
    if sent != expected:
        raise SystemExit(f"{work}: the SMTP sink received {sent} messages, expected {expected}")
    clear_jobs(app, kind)
    return Measured(finished - started, cpu_after - cpu_before, enqueued - started)


def warm_up(app: Any, worker: Worker, sink: SmtpSink) -> float:
    """One job of each kind through the worker (waits for it to start); its seconds."""
    started = time.perf_counter()
    for work in WORKS:
        kind = KINDS[work]
        enqueue_jobs(app, work, 1, 1)
        deadline = time.monotonic() + 60
        while job_counts(app, kind).get("done", 0) < 1:
            worker.check()
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker ran no {kind} job in 60 s:\n{worker.tail()}")
            time.sleep(POLL_SECONDS)
        clear_jobs(app, kind)
    return time.perf_counter() - started


# ---- storages ------------------------------------------------------------------------


@contextmanager
def job_storage(name: str, redis_url: str, folder: Path) -> Iterator[str]:
    """The ``JOBS_URL`` of a fresh Huey storage: a new SQLite file, or a flushed Redis db."""
    if name == "sqlite":
        path = folder / f"jobs-{secrets.token_hex(4)}.sqlite3"
        yield f"sqlite:///{path}"
        return
    import redis

    client = redis.Redis.from_url(redis_url)
    foreign = [key for key in client.scan_iter(count=1000) if not key.startswith(b"huey.")]
    if foreign:
        raise SystemExit(
            f"{redis_url} holds keys that are not Huey's (e.g. {foreign[0]!r}): this bench "
            "flushes its Redis db; name an unused one with --redis-url"
        )
    client.flushdb()
    try:
        yield redis_url
    finally:
        client.flushdb()
        client.close()


def build_app(settings: Settings, jobs_url: str) -> Any:
    from vrm_portal import create_app

    return create_app(settings.overrides(jobs_url))


def dispose(app: Any) -> None:
    from vrm_portal.extensions import db

    with app.app_context():
        db.engine.dispose()


# ---- report --------------------------------------------------------------------------


def versions(database_url: str, redis_url: str, storages: list[str]) -> list[str]:
    import sqlalchemy

    items = [
        f"Python {platform.python_version()}",
        f"huey {version('huey')}",
        f"Flask {version('flask')}",
        f"SQLAlchemy {sqlalchemy.__version__}",
        f"SQLite {sqlite3.sqlite_version}",
        f"aiosmtpd {version('aiosmtpd')}",
    ]
    if "redis" in storages:
        import redis

        client = redis.Redis.from_url(redis_url)
        items.append(
            f"Redis {client.info('server')['redis_version']} (redis-py {redis.__version__})"
        )
        client.close()
    if make_url(database_url).get_backend_name() == "postgresql":
        import psycopg

        dsn = make_url(database_url).set(drivername="postgresql")
        with psycopg.connect(dsn.render_as_string(hide_password=False)) as connection:
            server = connection.execute("SHOW server_version").fetchone()
        items.append(f"PostgreSQL {server[0] if server else '?'} (psycopg {psycopg.__version__})")
    return items


def code_state() -> str:
    """The commit measured, and whether the job engine or mail had uncommitted changes."""

    def git(*arguments: str) -> str:
        done = subprocess.run(
            ["git", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.rstrip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown commit"
    changed = git("status", "--porcelain", "--", "vrm_portal/jobs", "vrm_portal/mail.py")
    files = [line[3:] for line in changed.splitlines()]
    return f"{head}" + (f" + uncommitted changes in {', '.join(files)}" if files else "")


def print_profile(title: str, stats: pstats.Stats, limit: int) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats(limit)
        print(f"\n#### {title}: top {limit} by {order}\n")
        lines = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        print("```")
        print("\n".join(line.replace(str(REPO_ROOT) + "/", "") for line in lines[start:]))
        print("```")


# ---- main ------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL server (scratch db)")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="a Redis db of the bench's own: it is flushed (13; the tests use 14 and 15)",
    )
    parser.add_argument("--storages", default="sqlite,redis", help="sqlite, redis or both")
    parser.add_argument("--noop-jobs", type=int, default=2000)
    parser.add_argument("--email-jobs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100, help="jobs per transaction")
    parser.add_argument(
        "--loop-jobs",
        type=int,
        default=200,
        help="jobs of each work for the run_job loop (no Huey, one thread); 0: skip",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker threads (vrm worker)")
    parser.add_argument("--profile", action="store_true", help="+ cProfile of one run")
    parser.add_argument("--profile-jobs", type=int, default=300)
    parser.add_argument("--profile-work", choices=WORKS, default="email")
    parser.add_argument(
        "--log-dir", help="keep the logs here (bench.log, worker-*.log); default: thrown away"
    )
    parser.add_argument("--smtp-sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profiled-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    return parser.parse_args()


@dataclass
class Report:
    engine_name: str = ""
    versions: list[str] = field(default_factory=list)
    #: Inline runs of each work, in order (before the first storage, between, after).
    inline: dict[str, list[Measured]] = field(default_factory=dict)
    #: (work, storage or what, jobs, measured, the inline runs around it).
    rows: list[tuple[str, str, int, Measured, slice]] = field(default_factory=list)
    #: (title, profile) of ``--profile``.
    profiles: list[tuple[str, pstats.Stats]] = field(default_factory=list)


def measure(args: argparse.Namespace, storages: list[str], jobs: dict[str, int]) -> Report:
    report = Report(inline={work: [] for work in WORKS})
    with (
        scratch_database(args.database_url, "jobs") as scratch,
        tempfile.TemporaryDirectory(prefix="vrm_bench_jobs_") as folder,
    ):
        tmp = Path(folder)
        instance = tmp / "instance"
        instance.mkdir()
        logs = Path(args.log_dir) if args.log_dir else tmp
        logs.mkdir(parents=True, exist_ok=True)
        # The app logs each email (INFO), as in production: to a file, not the terminal.
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        file_handler = logging.FileHandler(logs / "bench.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(file_handler)
        console = logging.StreamHandler()
        console.setLevel(logging.WARNING)
        root.addHandler(console)

        # Development settings (testing would force JOBS_URL=immediate and the outbox),
        # and nothing written to the repository's instance folder.
        os.environ["VRM_ENV"] = "development"
        os.environ["VRM_INSTANCE_PATH"] = str(instance)
        from vrm_portal import schema
        from vrm_portal.db import create_db_engine

        engine = create_db_engine(scratch.url)
        schema.upgrade(engine)
        engine.dispose()
        report.engine_name = make_url(scratch.url).get_backend_name()
        report.versions = versions(scratch.url, args.redis_url, storages)
        sink = SmtpSink()
        settings = Settings(
            scratch.url,
            instance,
            sink.port,
            secrets.token_urlsafe(48),
            f"vrm-bench-jobs-{secrets.token_hex(4)}",
        )
        try:
            # Inline work and the run_job loop use an app whose engine is never used.
            inline_app = build_app(settings, "immediate")
            here = cpu_of([None, sink.process.pid])
            inline(inline_app, "email", 20, here)  # warm the templates and the sink

            def inline_round() -> None:
                for work in WORKS:
                    log(f"==> inline {work}: {jobs[work]:,}")
                    report.inline[work].append(inline(inline_app, work, jobs[work], here))

            inline_round()
            if args.loop_jobs:
                for work in WORKS:
                    log(f"==> run_job loop {work}: {args.loop_jobs:,}")
                    run = run_job_loop(inline_app, work, args.loop_jobs, args.batch, sink, here)
                    report.rows.append((work, LOOP_LABEL, args.loop_jobs, run, slice(0, 1)))
            for storage in storages:
                with job_storage(storage, args.redis_url, tmp) as jobs_url:
                    app = build_app(settings, jobs_url)
                    worker = Worker(
                        settings.environment(jobs_url),
                        args.workers,
                        logs / f"worker-{storage}.log",
                    )
                    everyone = cpu_of([None, worker.process.pid, sink.process.pid])
                    try:
                        log(f"==> {storage}: worker up in {warm_up(app, worker, sink):.1f} s")
                        for work in WORKS:
                            log(f"==> {storage}: {jobs[work]:,} {work} jobs through the engine")
                            run = through_engine(
                                app, work, jobs[work], args.batch, worker, sink, everyone
                            )
                            # Compared with the inline runs just before and just after.
                            done = len(report.inline[work])
                            around = slice(done - 1, done + 1)
                            report.rows.append((work, storage, jobs[work], run, around))
                    finally:
                        worker.stop()
                    dispose(app)
                inline_round()
            if args.profile:
                profile_runs(args, storages, settings, inline_app, sink, tmp, logs, report)
            dispose(inline_app)
        finally:
            sink.stop()
            root.removeHandler(file_handler)
            file_handler.close()
    return report


def profile_runs(
    args: argparse.Namespace,
    storages: list[str],
    settings: Settings,
    inline_app: Any,
    sink: SmtpSink,
    tmp: Path,
    logs: Path,
    report: Report,
) -> None:
    """``--profile``: one run per storage with the worker's threads under cProfile."""
    work, n = args.profile_work, args.profile_jobs
    for storage in storages:
        with job_storage(storage, args.redis_url, tmp) as jobs_url:
            app = build_app(settings, jobs_url)
            out = tmp / f"worker-{storage}.prof"
            worker = Worker(
                settings.environment(jobs_url),
                args.workers,
                logs / f"worker-{storage}-profiled.log",
                profile_to=out,
            )
            enqueue_profile = cProfile.Profile()
            try:
                warm_up(app, worker, sink)
                log(f"==> {storage}: profiled run, {n} {work} jobs")
                run = through_engine(
                    app,
                    work,
                    n,
                    args.batch,
                    worker,
                    sink,
                    cpu_of([None, worker.process.pid, sink.process.pid]),
                    enqueue_profile,
                )
                log(f"    profiled: {n / run.seconds:.0f} jobs/s")
            finally:
                worker.stop()
            dispose(app)
            if not out.exists():
                raise SystemExit(f"no profile from the worker:\n{worker.tail()}")
            title = f"{work} jobs ({storage} storage)"
            report.profiles.append((f"worker, {title}", pstats.Stats(str(out))))
            report.profiles.append((f"enqueueing side, {title}", pstats.Stats(enqueue_profile)))
    inline_profile = cProfile.Profile()
    inline_profile.enable()
    inline(inline_app, work, n, cpu_of([None]))
    inline_profile.disable()
    report.profiles.append((f"inline {work} loop", pstats.Stats(inline_profile)))


def print_report(
    args: argparse.Namespace, jobs: dict[str, int], report: Report, load: tuple[float, float]
) -> None:
    print()
    print(
        f"Job engine benchmark: database {report.engine_name}, worker = subprocess "
        f"`flask --app wsgi vrm worker --workers {args.workers}`, "
        f"{args.batch} jobs per enqueueing transaction"
    )
    print(f"Machine: {os.cpu_count()} cores, {platform.platform()}")
    print(f"Versions: {', '.join(report.versions)}")
    print(f"Code: {code_state()}")
    print()
    print(
        "| work | storage | jobs | seconds | jobs/s | inline jobs/s (runs around) "
        "| vs inline | overhead | CPU ms/job | enqueue s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def rate(work: str, runs: list[Measured]) -> float:
        return jobs[work] / (sum(run.seconds for run in runs) / len(runs))

    verdicts = []
    for work in WORKS:
        runs = report.inline[work]
        seconds = sum(run.seconds for run in runs) / len(runs)
        cpu_ms = sum(run.cpu for run in runs) / len(runs) / jobs[work] * 1000
        print(
            f"| {work} | inline (mean of {len(runs)} runs) | {jobs[work]:,} | {seconds:.3f} | "
            f"{rate(work, runs):,.0f} | - | 1.00 | - | {cpu_ms:.2f} | - |"
        )
        for row_work, storage, count, run, around in report.rows:
            if row_work != work:
                continue
            jobs_per_second = count / run.seconds
            reference = rate(work, runs[around])
            ratio = jobs_per_second / reference
            enqueue = "-" if run.enqueue_seconds is None else f"{run.enqueue_seconds:.2f}"
            print(
                f"| {work} | {storage} | {count:,} | {run.seconds:.2f} | {jobs_per_second:,.0f} "
                f"| {reference:,.0f} | {ratio:.2f} | {(1 - ratio) * 100:.0f}% "
                f"| {run.cpu / count * 1000:.2f} | {enqueue} |"
            )
            if work == "email" and storage != LOOP_LABEL:
                verdict = "met" if ratio >= 0.8 else "MISSED"
                verdicts.append(
                    f"target (email, {storage}): engine >= 0.80 x inline: {ratio:.2f}, {verdict}"
                )
    print()
    print(
        "CPU ms/job: user + system CPU of this process, the SMTP sink and (engine rows) the "
        "worker process, per job; it moves less than the rates with other load on the machine."
    )
    for work in WORKS:
        rates = ", ".join(f"{jobs[work] / run.seconds:,.0f}" for run in report.inline[work])
        print(f"inline {work} jobs/s, each run in order: {rates}")
    for line in verdicts:
        print(line)
    print(f"load average: {load[0]:.2f} at the start, {load[1]:.2f} at the end")
    for title, stats in report.profiles:
        print_profile(title, stats, 25 if title.startswith(("worker", "inline")) else 15)


def main() -> None:
    args = parse_args()
    if args.smtp_sink:
        run_smtp_sink()
        return
    if args.profiled_worker:
        run_profiled_worker(args.workers, args.profile_to)
        return
    storages = [name for name in args.storages.split(",") if name]
    if not storages or not set(storages) <= {"sqlite", "redis"}:
        raise SystemExit("--storages: sqlite, redis or sqlite,redis")
    jobs = {"noop": args.noop_jobs, "email": args.email_jobs}
    load_start = os.getloadavg()[0]
    report = measure(args, storages, jobs)
    print_report(args, jobs, report, (load_start, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
