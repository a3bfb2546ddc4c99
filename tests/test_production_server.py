"""The README's production start works: gunicorn, production settings, Redis, one proxy.

Started as a real process, the way an operator would run it, against a migrated
scratch database (PostgreSQL when the suite runs on it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path

import pytest

from vrm_portal import schema
from vrm_portal.consent.receipts import generate_key_file
from vrm_portal.db import create_db_engine
from vrm_portal.log.signing import generate_key_file as generate_log_key_file

ROOT = Path(__file__).resolve().parent.parent
#: Who runs the portal: production refuses to start without it.
OPERATOR_ENV = {
    "VRM_OPERATOR_NAME": "Example Group SAS",
    "VRM_OPERATOR_ADDRESS": "1 rue Exemple, 75001 Paris, France",
    "VRM_DPO_CONTACT": "dpo@example.com",
    "VRM_SUPERVISORY_AUTHORITY_NAME": "CNIL",
    "VRM_SUPERVISORY_AUTHORITY_URL": "https://www.cnil.fr/",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> HTTPResponse:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.fixture
def gunicorn(scratch_database_url: str, smtp, tmp_path: Path) -> Iterator[int]:
    engine = create_db_engine(scratch_database_url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()
    port = _free_port()
    key_file = tmp_path / "receipts.pem"
    generate_key_file(key_file)
    log_key_file = tmp_path / "log.pem"
    generate_log_key_file(log_key_file)
    env = {
        **os.environ,
        "VRM_ENV": "production",
        "VRM_SECRET_KEY": "a-production-secret-key-of-more-than-32-chars",
        "VRM_DATABASE_URL": scratch_database_url,
        "VRM_REDIS_URL": "redis://127.0.0.1:6379/14",
        "VRM_PUBLIC_BASE_URL": "https://vrm.example.com",
        "VRM_SMTP_HOST": "127.0.0.1",
        "VRM_SMTP_PORT": str(smtp[0]),
        "VRM_PROXY_HOPS": "1",
        "VRM_INSTANCE_PATH": str(tmp_path / "instance"),
        "VRM_RECEIPT_SIGNING_KEY_FILE": str(key_file),
        "VRM_LOG_SIGNING_KEY_FILE": str(log_key_file),
        **OPERATOR_ENV,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(port, "/healthz").status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"gunicorn did not start:\n{output}")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stdout:
            process.stdout.close()


def test_gunicorn_serves_the_portal_ready_on_database_and_redis(gunicorn):
    response = _get(gunicorn, "/readyz")
    assert response.status == 200


def test_behind_the_tls_proxy_cookies_are_secure_and_hsts_is_sent(gunicorn):
    response = _get(
        gunicorn,
        "/login",
        {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7", "Host": "vrm.example.com"},
    )
    assert response.status == 200
    assert "max-age=" in (response.getheader("Strict-Transport-Security") or "")
    cookie = response.getheader("Set-Cookie") or ""
    assert cookie.startswith("vrm_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in cookie


def test_production_refuses_to_start_without_its_settings(tmp_path):
    env = {**os.environ, "VRM_ENV": "production", "VRM_INSTANCE_PATH": str(tmp_path)}
    for name in ("VRM_SECRET_KEY", "VRM_PUBLIC_BASE_URL", "VRM_SMTP_HOST"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: VRM_SECRET_KEY must be set")
    assert len(result.stderr.splitlines()) == 1, result.stderr


def _command(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """``flask --app wsgi vrm list-brands`` as typed in a terminal, with ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("VRM_")}
    env |= {"VRM_INSTANCE_PATH": str(tmp_path), **settings}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "vrm", "list-brands"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "error: VRM_SECRET_KEY must be set to a random string"),
        (
            {"VRM_ENV": "development", "VRM_DPO_CONTACT": "nobody"},
            "error: VRM_DPO_CONTACT must be an email address",
        ),
        (
            {"VRM_ENV": "development", "VRM_SUPERVISORY_AUTHORITY_URL": "www.cnil.fr"},
            "error: VRM_SUPERVISORY_AUTHORITY_URL must be an http(s) URL",
        ),
        (
            {"VRM_ENV": "development", "VRM_SMTP_PORT": "twenty-five"},
            "error: VRM_SMTP_PORT must be a whole number, got 'twenty-five'",
        ),
    ],
    ids=["production-without-settings", "dpo-contact", "authority-url", "not-a-number"],
)
def test_a_command_refuses_a_missing_or_bad_setting_in_one_line(tmp_path, settings, message):
    result = _command(tmp_path, **settings)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_gunicorn_does_not_start_with_a_missing_setting_and_says_which(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("VRM_")}
    env |= {"VRM_ENV": "production", "VRM_INSTANCE_PATH": str(tmp_path), **OPERATOR_ENV}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{_free_port()}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 4, output  # gunicorn's "App failed to load"
    assert "App failed to load" in output
    assert "Traceback" not in output
    refusals = [line for line in output.splitlines() if line.startswith("error: ")]
    assert refusals, output
    assert {line.split(" (for instance")[0] for line in refusals} == {
        "error: VRM_SECRET_KEY must be set to a random string of at least 32 characters"
    }
