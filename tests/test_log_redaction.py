"""No secret link and no email address in any log line: the portal's own logs, werkzeug's
request log and gunicorn's access log (vrm_portal/log_redaction.py, gunicorn.conf.py).

The journey below goes through every emailed link (verification, password reset, email
change, consent confirmation, proving an account to link a provider) with DEBUG logging
on the root logger, so that the SQL statements and their parameters are in the capture
too; then werkzeug's real request handler serves those links over HTTP, as `make run`
would, and its request log is checked as well.
"""

from __future__ import annotations

import logging
import os
import re
import runpy
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path

import pytest
from gunicorn.config import Config as GunicornConfig
from werkzeug.serving import make_server

from tests.accounts.flows import register
from tests.accounts.social.flows import continue_with
from tests.conftest import sign_in, submit
from tests.mailbox import link_in
from vrm_portal import log_redaction, schema
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue

ROOT = Path(__file__).resolve().parent.parent
#: Anything that looks like an email address, plain or percent-encoded (``%40``).
EMAIL_LIKE = re.compile(r"[\w.+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
#: Terminal colours, which werkzeug's request log adds around the request line.
ANSI_STYLE = re.compile(r"\x1b\[[0-9;]*m")
NEW_PASSWORD = "a fresh passphrase for logan"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record at DEBUG and above, SQLAlchemy's statements and parameters included
    (set before the test's database connection opens: it decides then whether to log)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    return caplog


def token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


def serve_with_werkzeug(app, paths: list[str]) -> None:
    """GET ``paths`` through werkzeug's development server (its request log included)."""
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, name="werkzeug-log-test", daemon=True)
    thread.start()
    try:
        for path in paths:
            connection = HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            connection.request("GET", path)
            connection.getresponse().read()
            connection.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_journey_through_every_emailed_link_logs_no_token_and_no_address(
    debug_logs, app, client, new_browser, db_session, mailbox, make_account, identity_provider
):
    identity_provider.reset()
    links: list[str] = []

    # Sign up, and confirm the address.
    register(client, "logan@example.com")
    links.append(link_in(mailbox.wait_for("logan@example.com"), "/verify-email/"))
    assert submit(client, links[-1], {}, form_page=links[-1]).status_code == 302

    # Forgotten password: reset it through the emailed link.
    submit(client, "/password/forgot", {"email": "logan@example.com"})
    links.append(link_in(mailbox.wait_for("logan@example.com", count=2), "/password/reset/"))
    reset = submit(
        client,
        links[-1],
        {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        form_page="/password/forgot",
    )
    assert reset.status_code == 302

    # Change the address, confirmed from the new mailbox.
    sign_in(client, "logan@example.com", NEW_PASSWORD)
    submit(
        client,
        "/account/email",
        {"new_email": "logan.new@example.org", "current_password": NEW_PASSWORD},
    )
    links.append(link_in(mailbox.wait_for("logan.new@example.org"), "/account/email/confirm/"))
    assert submit(client, links[-1], {}, form_page="/account/").status_code == 302

    # An email consent, confirmed through the emailed link.
    load_demo_catalogue(db_session)
    db_session.commit()
    submit(
        client,
        "/consents/maison-berlingot/email-offers",
        {"choice": "grant", "version": 1},
        form_page="/consents/maison-berlingot",
    )
    links.append(link_in(mailbox.wait_for("logan.new@example.org", count=2), "/consents/confirm/"))
    assert submit(client, links[-1], {}).status_code == 303

    # A provider with the address of an existing account: proven through the emailed link.
    make_account("olive@example.com")
    other = new_browser()
    continue_with(other, email="olive@example.com", subject="olive")
    submit(other, "/auth/oauth/link/email", {}, form_page="/auth/oauth/link/confirm")
    links.append(link_in(mailbox.wait_for("olive@example.com"), "/auth/oauth/link/email/"))
    assert submit(other, links[-1], {}).status_code == 302

    # The same links (and an address in a query string) through werkzeug's own server.
    serve_with_werkzeug(app, [*links, "/password/forgot?email=logan%40example.com"])

    logged = ANSI_STYLE.sub("", debug_logs.text)
    assert "sent" in logged  # the mail module did log, and so did werkzeug:
    assert '"GET /password/reset/[redacted] HTTP/1.1" 410' in logged
    for link in links:
        assert token_of(link) not in logged, link
    assert EMAIL_LIKE.findall(logged) == []


def test_redaction_rules(app):
    """(``app``: create_app registered its token routes.)"""
    redact = log_redaction.redact
    assert redact("GET /password/reset/abc-DEF_123.x?next=/ HTTP/1.1") == (
        "GET /password/reset/[redacted]?next=/ HTTP/1.1"
    )
    assert redact('{"link": "https://vrm.example.com/verify-email/Zz9_-"}') == (
        '{"link": "https://vrm.example.com/verify-email/[redacted]"}'
    )
    assert redact("/auth/oauth/google/callback?code=c0de&state=s7&iss=x") == (
        "/auth/oauth/google/callback?code=[redacted]&state=[redacted]&iss=x"
    )
    assert redact("to José.Ü+tag@exämple.co.uk, bob%40example.com;") == "to [email], [email];"
    assert redact("GET /password/forgot HTTP/1.1") == "GET /password/forgot HTTP/1.1"
    assert redact("job 3f2a failed: timeout") == "job 3f2a failed: timeout"


def test_a_huge_line_is_redacted_in_linear_time(app):
    """Every record goes through ``redact``: a long line must not stall the process."""
    line = "a" * 1_000_000 + " x%2B" * 100_000 + " to olive@example.com"
    started = time.perf_counter()
    assert log_redaction.redact(line).endswith(" to [email]")
    assert time.perf_counter() - started < 5


def test_a_record_is_redacted_with_its_arguments_and_traceback(app, caplog):
    caplog.set_level(logging.INFO)
    log = logging.getLogger("vrm_portal.some.module")
    try:
        raise ValueError("no account for carol@example.com")
    except ValueError:
        log.exception("reset of %s via %s", "carol@example.com", "/password/reset/s3cr3t")
    [record] = caplog.records
    assert record.getMessage() == "reset of [email] via /password/reset/[redacted]"
    assert "carol@example.com" not in caplog.text
    assert "ValueError: no account for [email]" in caplog.text


# ---- gunicorn ---------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_the_gunicorn_settings_redact_gunicorns_own_loggers(app):
    """Even where the portal's record factory is not in place (replaced by another
    program, say), gunicorn.conf.py's logger class redacts gunicorn's two logs."""
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    gunicorn_logger = settings["logger_class"](GunicornConfig())
    collect = _Collect()
    gunicorn_logger.access_log.addHandler(collect)
    gunicorn_logger.error_log.addHandler(collect)
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    try:
        gunicorn_logger.access_log.info(
            '%(h)s "%(r)s" %(s)s "%(f)s"',
            {
                "h": "203.0.113.7",
                "r": "GET /password/reset/s3cr3t-t0ken HTTP/1.1",
                "s": "200",
                "f": "https://vrm.example.com/account/email/confirm/an0ther?e=jo%40example.com",
            },
        )
        gunicorn_logger.error_log.error("Error handling request /verify-email/v3r1fy")
    finally:
        logging.setLogRecordFactory(factory)
        for log in (gunicorn_logger.access_log, gunicorn_logger.error_log):
            log.removeHandler(collect)
            for handler in [h for h in log.handlers if getattr(h, "_gunicorn", False)]:
                log.removeHandler(handler)
            log.filters.clear()
    assert collect.lines == [
        '203.0.113.7 "GET /password/reset/[redacted] HTTP/1.1" 200 '
        '"https://vrm.example.com/account/email/confirm/[redacted]?e=[email]"',
        "Error handling request /verify-email/[redacted]",
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def gunicorn_access_log(scratch_database_url: str, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The portal under gunicorn started from the repository's root, as `make serve` does
    (gunicorn reads gunicorn.conf.py there), its access log written to a file.

    With the testing settings: what matters here is gunicorn's logging, and the
    production settings have their own test (tests/test_production_server.py).
    """
    engine = create_db_engine(scratch_database_url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()
    port = _free_port()
    access_log = tmp_path / "access.log"
    env = {
        **os.environ,
        "VRM_ENV": "testing",
        "VRM_DATABASE_URL": scratch_database_url,
        "VRM_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    command = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}"]
    command += ["--access-logfile", str(access_log), "wsgi:app"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(port, "/healthz") == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"gunicorn did not start:\n{output}")
            time.sleep(0.2)
        yield port, access_log
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stdout:
            process.stdout.close()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def test_gunicorns_access_log_has_no_token_and_no_address(gunicorn_access_log):
    port, access_log = gunicorn_access_log
    tokens = {
        "/verify-email/": "VerifyT0ken-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "/password/reset/": "ResetT0ken-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "/account/email/confirm/": "ChangeT0ken-ccccccccccccccccccccccccccccccccc",
        "/consents/confirm/": "ConsentT0ken-dddddddddddddddddddddddddddddddd",
        "/attention-emails/off/": "OffT0ken-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
        "/auth/oauth/link/email/": "LinkT0ken-ffffffffffffffffffffffffffffffffffff",
    }
    for prefix, token in tokens.items():
        _get(port, f"{prefix}{token}?next=%2Faccount%2F")
    referer = f"https://vrm.example.com/password/reset/{tokens['/password/reset/']}"
    _get(port, "/password/forgot?email=logan%40example.com", {"Referer": referer})

    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = [line for line in access_log.read_text().splitlines() if "/healthz" not in line]
        if len(lines) >= len(tokens) + 1:
            break
        time.sleep(0.1)
    logged = "\n".join(lines)
    assert len(lines) == len(tokens) + 1, logged
    for prefix in tokens:
        assert f'"GET {prefix}[redacted]?next=%2Faccount%2F HTTP/1.1"' in logged
    for token in tokens.values():
        assert token not in logged
    assert "/password/forgot?email=[email]" in logged
    assert EMAIL_LIKE.findall(logged) == []
