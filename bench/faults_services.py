"""The services bench/faults.py runs and breaks: a PostgreSQL cluster and a Redis of the
run's own, a local SMTP sink, a webhook receiver, and the portal (gunicorn and a job
worker). Each can be stopped and started again; none touches a server it did not start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when nothing listens there, else a port the kernel picks."""
    if preferred:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(test: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> float:
    """Seconds until ``test()`` held; raises after ``timeout``."""
    started = time.time()
    while True:
        if test():
            return time.time() - started
        if time.time() - started > timeout:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(step)


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


# ---- PostgreSQL -------------------------------------------------------------------------


class PostgresCluster:
    """A cluster of the run's own (``initdb`` into the run's folder), never the machine's.

    initdb refuses root: as root, the cluster belongs to the ``postgres`` user."""

    def __init__(self, folder: Path, port: int, bin_dir: Path | None = None) -> None:
        self.folder = folder
        self.port = port
        self.data = folder / "data"
        self.sockets = folder / "sockets"
        self.logfile = folder / "postgresql.log"
        self.bin = bin_dir or _postgres_bin()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, *command], capture_output=True, text=True, check=check, timeout=120
        )

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self.as_user:
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=60 "
            "-c shared_buffers=64MB -c log_min_messages=warning"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')

    def accepts(self) -> bool:
        try:
            with psycopg.connect(self.admin_dsn, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def terminate_backends(self, database: str) -> int:
        """``pg_terminate_backend`` on every connection to ``database`` but ours."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop",
                check=False,
            )  # fmt: skip


def _postgres_bin() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        raise SystemExit("PostgreSQL's pg_ctl/initdb not found (apt-get install postgresql)")
    return versions[-1].parent


# ---- Redis ------------------------------------------------------------------------------


class RedisServer:
    """A ``redis-server`` of the run's own, keeping nothing on disk: a restart empties it
    (the queue's pending hand-overs with it), as a Redis without persistence would."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise SystemExit("redis-server not found (apt-get install redis-server)")
        with (self.folder / "redis.log").open("ab") as output:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.folder)],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(lambda: port_open(self.port), 20, "redis-server")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


# ---- SMTP sink --------------------------------------------------------------------------


@dataclass
class Mail:
    at: float
    to: tuple[str, ...]
    message_id: str
    subject: str
    body: str


class SmtpSink:
    """aiosmtpd on a fixed port, recording every message; stop() closes the port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[Mail] = []
        self.lock = threading.Lock()
        self.controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                parsed = message_from_bytes(envelope.original_content, policy=default_policy)
                body = parsed.get_body(preferencelist=("plain",))
                mail = Mail(
                    time.time(),
                    tuple(envelope.rcpt_tos),
                    str(parsed.get("Message-ID", "")),
                    str(parsed.get("Subject", "")),
                    body.get_content() if body is not None else "",
                )
                with sink.lock:
                    sink.messages.append(mail)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def snapshot(self) -> list[Mail]:
        with self.lock:
            return list(self.messages)


# ---- webhook receiver -------------------------------------------------------------------


@dataclass
class Delivery:
    at: float
    path: str
    webhook_id: str
    seq: int
    kind: str
    consumer_id: str | None
    purpose: str | None
    signature_ok: bool


class WebhookReceiver:
    """A brand's endpoint: one path per brand (``/hooks/<slug>``), every POST recorded
    with its ``Webhook-Id`` and feed ``seq``, and its signature checked."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.deliveries: list[Delivery] = []
        self.secrets: dict[str, str] = {}
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        from vrm_portal.webhooks.signing import verify

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                slug = self.path.rsplit("/", 1)[-1]
                try:
                    verify(receiver.secrets.get(slug, ""), dict(self.headers.items()), body)
                    signature_ok = True
                except Exception:
                    signature_ok = False
                try:
                    document = json.loads(body)
                except ValueError:
                    document = {}
                with receiver.lock:
                    receiver.deliveries.append(
                        Delivery(
                            time.time(),
                            slug,
                            self.headers.get("Webhook-Id", ""),
                            int(document.get("seq", -1)),
                            str(document.get("type", "")),
                            document.get("consumer_id"),
                            (document.get("data") or {}).get("purpose"),
                            signature_ok,
                        )
                    )
                self.send_response(204)
                self.end_headers()

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def snapshot(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)


# ---- the portal -------------------------------------------------------------------------


@dataclass
class Portal:
    """gunicorn (``workers`` processes) and one ``vrm worker``, with ``env``."""

    env: dict[str, str]
    port: int
    workers: int
    logs: Path
    gunicorn: subprocess.Popen[bytes] | None = None
    job_worker: subprocess.Popen[bytes] | None = None
    job_worker_starts: int = 0
    #: Every process that ever served, for the memory samples: pid -> role.
    roles: dict[int, str] = field(default_factory=dict)

    def flask(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "wsgi", "vrm", *arguments],
            cwd=ROOT, env=self.env, capture_output=True, text=True, check=check, timeout=600,
        )  # fmt: skip

    def python(self, code: str, *arguments: str) -> str:
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", code, *arguments],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"seed failed:\n{result.stderr[-4000:]}")
        return result.stdout

    def start_gunicorn(self) -> None:
        with (self.logs / "gunicorn.log").open("ab") as output:
            self.gunicorn = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "-w", str(self.workers), "-b",
                 f"127.0.0.1:{self.port}", "--access-logfile", str(self.logs / "access.log"),
                 "--graceful-timeout", "10", "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.roles[self.gunicorn.pid] = "gunicorn master"
        wait_for(lambda: len(self.web_workers()) >= self.workers, 60, "gunicorn workers")
        wait_for(lambda: port_open(self.port), 60, "gunicorn")

    def web_workers(self) -> list[int]:
        if self.gunicorn is None:
            return []
        pids = children_of(self.gunicorn.pid)
        for pid in pids:
            self.roles.setdefault(pid, "gunicorn worker")
        return pids

    def start_job_worker(self) -> None:
        with (self.logs / "worker.log").open("ab") as output:
            self.job_worker = subprocess.Popen(
                [str(VENV_BIN / "flask"), "--app", "wsgi", "vrm", "worker", "--workers", "2"],
                cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.job_worker_starts += 1
        self.roles[self.job_worker.pid] = "job worker"

    def kill_job_worker(self) -> None:
        if self.job_worker and self.job_worker.poll() is None:
            self.job_worker.send_signal(signal.SIGKILL)
            self.job_worker.wait(timeout=20)

    def processes(self) -> list[int]:
        pids = [self.gunicorn.pid] if self.gunicorn else []
        pids += self.web_workers()
        if self.job_worker and self.job_worker.poll() is None:
            pids.append(self.job_worker.pid)
        return pids

    def stop(self) -> None:
        for process in (self.job_worker, self.gunicorn):
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGINT if process is self.job_worker else signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def grep_count(path: Path, needles: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(needles, 0)
    try:
        with path.open(errors="replace") as handle:
            for line in handle:
                for needle in needles:
                    if needle in line:
                        counts[needle] += 1
    except OSError:
        pass
    return counts
