"""A real job worker process (``flask --app wsgi vrm worker``) for the tests that run the
portal the way ``make run`` does: a server, and a worker beside it."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
WORKER = [sys.executable, "-m", "flask", "--app", "wsgi", "vrm", "worker", "--workers", "2"]


def jobs_url(folder: Path) -> str:
    """The queue: Redis when ``VRM_TEST_JOBS_URL`` names one, else a Huey SQLite file in
    ``folder``. Each caller also gets a queue name of its own (``queue_name``): the e2e
    server's worker lives as long as the test session and must not take other tests'
    jobs from a shared Redis."""
    return os.environ.get("VRM_TEST_JOBS_URL") or f"sqlite:///{folder / 'jobs.sqlite3'}"


def queue_name(folder: Path) -> str:
    """A queue name as unique as the test's temporary folder."""
    return "vrm-test-" + hashlib.sha256(str(folder).encode()).hexdigest()[:12]


def worker_env(
    *,
    database_url: str,
    queue_url: str,
    smtp_port: int,
    instance: Path,
    receipt_key_file: str,
    public_base_url: str = "http://localhost",
    queue: str = "vrm-portal",
    **settings: str,
) -> dict[str, str]:
    """The environment of a worker that shares the test app's database, queue and mail."""
    env = {
        **os.environ,
        "VRM_ENV": "development",
        "VRM_INSTANCE_PATH": str(instance),
        "VRM_DATABASE_URL": database_url,
        "VRM_JOBS_URL": queue_url,
        "VRM_JOBS_QUEUE": queue,
        "VRM_MAIL_BACKEND": "smtp",
        "VRM_SMTP_HOST": "127.0.0.1",
        "VRM_SMTP_PORT": str(smtp_port),
        "VRM_RECEIPT_SIGNING_KEY_FILE": receipt_key_file,
        "VRM_PUBLIC_BASE_URL": public_base_url,
        "VRM_DEV_IDP": "0",
        "VRM_JOBS_TICK_SECONDS": "1",
        "VRM_SCHEDULE_REMINDERS": "off",
    }
    env.pop("VRM_REDIS_URL", None)
    env.update({f"VRM_{name}": value for name, value in settings.items()})
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:  # the child keeps its own copy of the handle
        return subprocess.Popen(
            WORKER, cwd=PROJECT, env=env, stdout=output, stderr=subprocess.STDOUT
        )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as in a terminal; killed if it does not stop within 15 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
