"""End-to-end fixtures: the real app served over HTTP, a real database, a real browser.

- ``e2e_database_url``: a fresh database for the whole e2e run, committed for real (not the
  rolled-back transaction of the unit tests): a temporary SQLite file, or a new database
  created on the suite's PostgreSQL server and dropped at the end.
- ``live_server``: the app built by ``create_app`` and served by werkzeug in a daemon
  thread; mail goes to the suite's aiosmtpd server (the ``smtp`` fixture).
- ``browser`` / ``page``: headless Chromium driven by Playwright (sync API). The Debian
  Chromium at /usr/bin/chromium is used, or the one ``VRM_CHROMIUM`` names; without
  either, Playwright's own bundled Chromium.
- ``check_a11y``: runs axe-core on the current page and fails on any violation of
  impact "serious" or "critical", listing the rules, their help and the nodes at fault.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import PASSWORD, app_overrides, scratch_database, social_overrides
from tests.identity_provider import RunningProvider
from tests.mailbox import Mailbox
from tests.worker import jobs_url, queue_name, start_worker, stop_worker, worker_env
from vrm_portal import create_app, schema
from vrm_portal.accounts import service
from vrm_portal.accounts.models import StaffRole
from vrm_portal.clock import utcnow
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.extensions import db, limiter

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEBIAN_CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path("/tmp/e2e-shots")
#: axe impacts that fail a test; "minor" and "moderate" ones are reported, not fatal.
BLOCKING_IMPACTS = frozenset({"serious", "critical"})

expect.set_options(timeout=10_000)


# ---- database and server ------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_database_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new, empty database on the suite's engine for the e2e run, dropped afterwards."""
    with scratch_database(database_url, tmp_path_factory.mktemp("e2e-db"), "e2e") as url:
        yield url


class _LateBoundApp:
    """The WSGI app handed to the server before the Flask app exists.

    The server socket is bound first (port 0, so the OS picks a free port without a
    race), which gives the URL that ``create_app`` needs as ``PUBLIC_BASE_URL``.
    """

    def __init__(self) -> None:
        self.app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None, "live server called before the app was built"
        return self.app(environ, start_response)


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: Flask
    mailbox: Mailbox


@pytest.fixture(scope="session")
def live_server(
    e2e_database_url: str,
    smtp: tuple[int, Mailbox],
    identity_provider: RunningProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """The real app on http://127.0.0.1:<free port>, over a freshly migrated database."""
    engine = create_db_engine(e2e_database_url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()

    smtp_port, mailbox = smtp
    wsgi = _LateBoundApp()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, wsgi, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    instance = tmp_path_factory.mktemp("instance")
    overrides = app_overrides(e2e_database_url, smtp_port, instance)
    overrides |= social_overrides(identity_provider)
    # As with `make run`: the server only enqueues; a worker process beside it sends
    # the emails and runs the schedules.
    overrides["JOBS_URL"] = jobs_url(instance)
    overrides["JOBS_QUEUE"] = queue_name(instance)
    # The journeys read the history right after a change: ledger events are integrated in
    # the change's transaction (tests/consent/test_sequencer*.py cover the worker mode).
    overrides["LEDGER_SEQUENCER"] = "inline"
    identity_provider.allow_portal(url)
    try:
        app = create_app(overrides | {"PUBLIC_BASE_URL": url})
    except BaseException:
        server.server_close()
        raise
    wsgi.app = app
    worker = start_worker(
        worker_env(
            database_url=e2e_database_url,
            queue_url=overrides["JOBS_URL"],
            smtp_port=smtp_port,
            instance=instance,
            receipt_key_file=overrides["RECEIPT_SIGNING_KEY_FILE"],
            public_base_url=url,
            queue=overrides["JOBS_QUEUE"],
            LEDGER_SEQUENCER="inline",
        ),
        instance / "worker.log",
    )
    thread = threading.Thread(target=server.serve_forever, name="e2e-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=url, app=app, mailbox=mailbox)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        stop_worker(worker)
        app.extensions["vrm_jobs"].close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def make_account(live_server: LiveServer) -> Callable[..., str]:
    """Create a confirmed account (staff with ``role``) in the live database; returns its email."""

    def make(
        email: str | None = None, password: str = PASSWORD, role: StaffRole | None = None
    ) -> str:
        email = email or unique_email("known")
        with live_server.app.app_context(), Session(db.engine) as session:
            registration = service.register_account(
                session, email, password, locale="en", verification_ttl=timedelta(hours=1)
            )
            registration.account.email_verified_at = utcnow()
            registration.account.staff_role = role.value if role else None
            session.commit()
        return email

    return make


@pytest.fixture
def catalogue(live_server: LiveServer) -> None:
    """The demo brands, purposes and topics in the live server's database (idempotent)."""
    with live_server.app.app_context(), Session(db.engine) as session:
        load_demo_catalogue(session)
        session.commit()


def sign_in_as(page: Page, email: str) -> None:
    """Sign in through the form with the default password; wait for the confirmation."""
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("You are signed in.")


def unique_email(prefix: str) -> str:
    """An address no other test uses, so that tests share the database safely."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


# ---- browser ------------------------------------------------------------------------


def chromium_executable() -> str | None:
    """``VRM_CHROMIUM``, else Debian's Chromium, else None (Playwright's bundled one)."""
    for candidate in (os.environ.get("VRM_CHROMIUM"), DEBIAN_CHROMIUM):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    options: dict[str, Any] = {"headless": True, "args": CHROMIUM_ARGS}
    executable = chromium_executable()
    if executable:
        options["executable_path"] = executable
    browser = playwright.chromium.launch(**options)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A fresh browser profile (no cookies) in English, on the live server.

    Rate limits start from zero: every test's traffic comes from 127.0.0.1, and the
    per-address sign-in limit would otherwise add up across tests.
    """
    with live_server.app.app_context():
        limiter.reset()
    context = browser.new_context(
        base_url=live_server.url,
        locale="en-GB",
        viewport={"width": 1280, "height": 800},
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


# ---- accessibility and screenshots ------------------------------------------------


def axe_report(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}\n"
            f"  {violation['helpUrl']}"
        )
        for node in violation["nodes"]:
            target = ", ".join(str(t) for t in node["target"])
            lines.append(f"    * {target}\n      {node.get('html', '').strip()[:200]}")
            summary = (node.get("failureSummary") or "").strip().replace("\n", "\n        ")
            if summary:
                lines.append(f"        {summary}")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def axe() -> Axe:
    return Axe()


@pytest.fixture
def check_a11y(axe: Axe) -> Callable[[Page, str], None]:
    """``check_a11y(page, "what this page is")``: axe-core finds nothing serious."""

    def check(page: Page, what: str) -> None:
        page.wait_for_load_state("load")
        results = axe.run(page)
        violations = results.response["violations"]
        blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
        others = [v for v in violations if v not in blocking]
        if others:
            print(f"\naxe, {what} ({page.url}), non-blocking:\n{axe_report(others)}")
        assert not blocking, (
            f"axe found serious or critical violations on {what} ({page.url}):\n"
            + axe_report(blocking)
        )

    return check


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Path]:
    """``screenshot(page, "name")`` saves the whole page to /tmp/e2e-shots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
