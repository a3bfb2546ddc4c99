"""Fixtures: the real database (SQLite by default, PostgreSQL with VRM_TEST_DATABASE_URL),
one rolled-back transaction per test, a real SMTP server, and the app under test."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, make_url
from sqlalchemy.orm import Session

os.environ["VRM_ENV"] = "testing"

from tests.identity_provider import RunningProvider, start_identity_provider
from tests.mailbox import Mailbox, start_smtp_server
from vrm_portal import create_app, schema
from vrm_portal.accounts import service
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.clock import utcnow
from vrm_portal.db import create_db_engine
from vrm_portal.extensions import db, limiter

PASSWORD = "correct horse battery staple"
#: Cheap Argon2id parameters: the tests check behaviour, not hashing cost.
CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
#: Seconds the portal waits for a provider in the tests (the "slow provider" sleeps longer).
SOCIAL_TIMEOUT = 1.5


def test_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("VRM_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'vrm-test.sqlite3'}"


def app_overrides(database_url: str, smtp_port: int, instance: Path) -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url,
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_port,
        "MAIL_OUTBOX_DIR": str(instance / "outbox"),
        "RECEIPT_SIGNING_KEY_FILE": str(instance / "receipt_signing_key.pem"),
        "LOG_SIGNING_KEY_FILE": str(instance / "log_signing_key.pem"),
        "ARGON2_PARAMETERS": CHEAP_ARGON2,
    }


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[int, Mailbox]]:
    controller, mailbox = start_smtp_server()
    yield controller.port, mailbox
    controller.stop()


@pytest.fixture(scope="session")
def identity_provider() -> Iterator[RunningProvider]:
    """A real OpenID Connect provider over HTTP, for the social sign-in tests."""
    provider = start_identity_provider()
    provider.allow_portal("http://localhost")
    yield provider
    provider.stop()


def social_overrides(provider: RunningProvider) -> dict[str, Any]:
    return {
        "SOCIAL_PROVIDERS": provider.portal_settings(),
        "SOCIAL_HTTP_TIMEOUT": SOCIAL_TIMEOUT,
    }


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return test_database_url(tmp_path_factory)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The test database, emptied and migrated to head once per run."""
    engine = create_db_engine(database_url)
    schema.downgrade(engine, "base")
    schema.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(
    engine: Engine,
    database_url: str,
    smtp: tuple[int, Mailbox],
    identity_provider: RunningProvider,
    tmp_path_factory: Any,
) -> Iterator[Flask]:
    port, _mailbox = smtp
    overrides = app_overrides(database_url, port, tmp_path_factory.mktemp("instance"))
    app = create_app(overrides | social_overrides(identity_provider))
    yield app
    app.extensions["vrm_db"].engine.dispose()


@pytest.fixture
def connection(app: Flask, engine: Engine) -> Iterator[Connection]:
    """One outer transaction per test, rolled back at the end: nothing a test writes stays."""
    connection = engine.connect()
    transaction = connection.begin()
    db.bind_to_connection(app, connection)
    try:
        yield connection
    finally:
        transaction.rollback()
        connection.close()


@pytest.fixture
def db_session(connection: Connection) -> Iterator[Session]:
    """A session for arranging and checking data, inside the test's transaction."""
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    yield session
    session.close()


@pytest.fixture
def mailbox(smtp: tuple[int, Mailbox]) -> Mailbox:
    _port, mailbox = smtp
    mailbox.clear()
    return mailbox


@pytest.fixture
def new_browser(app: Flask, connection: Connection) -> Callable[..., FlaskClient]:
    """Open another browser (its own cookie jar) on the app under test.

    Each is a plain test client (not entered with ``with``), so every request's context
    ends with it, as on a real server, and two browsers never share request state.
    ``user_agent`` tells the browsers apart on the Sessions page.
    """

    def open_browser(user_agent: str | None = None) -> FlaskClient:
        browser = app.test_client()
        if user_agent:
            browser.environ_base["HTTP_USER_AGENT"] = user_agent
        return browser

    return open_browser


@pytest.fixture
def client(app: Flask, mailbox: Mailbox, new_browser: Callable[..., FlaskClient]) -> FlaskClient:
    """The test's main browser; rate limits start from zero."""
    with app.app_context():
        limiter.reset()
    return new_browser()


@pytest.fixture
def make_account(db_session: Session) -> Callable[..., Account]:
    """Create an account the way the product does; ``verified`` and ``role`` as traits."""

    def make(
        email: str = "alice@example.com",
        password: str = PASSWORD,
        *,
        verified: bool = True,
        role: StaffRole | None = None,
        locale: str | None = None,
        staff_brand_id: int | None = None,
    ) -> Account:
        registration = service.register_account(
            db_session,
            email,
            password,
            locale=locale,
            verification_ttl=timedelta(hours=1),
        )
        account = registration.account
        if verified:
            account.email_verified_at = utcnow()
        if role is not None:
            account.staff_role = role.value
            account.staff_brand_id = staff_brand_id
        db_session.commit()
        return account

    return make


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on the page at ``path``."""
    page = client.get(path)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {page.status_code})"
    return match.group(1)


def submit(
    client: FlaskClient, path: str, data: dict[str, Any], *, form_page: str | None = None
) -> Any:
    """Post ``data`` to ``path`` with the CSRF token of the form at ``form_page``."""
    token = csrf_token(client, form_page or path)
    return client.post(path, data={"csrf_token": token, **data})


def sign_in(
    client: FlaskClient, email: str = "alice@example.com", password: str = PASSWORD, **extra: Any
) -> Any:
    response = submit(client, "/login", {"email": email, "password": password, **extra})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


@contextmanager
def scratch_database(database_url: str, folder: Path, prefix: str) -> Iterator[str]:
    """A new, empty database on the same engine as ``database_url``, dropped afterwards."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{folder / f'{prefix}.sqlite3'}"
        return
    name = f"vrm_{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def scratch_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database for one test (migrations, extra processes)."""
    with scratch_database(database_url, tmp_path, "scratch") as url:
        yield url


@dataclass
class ScratchPortal:
    """A second app over its own freshly migrated database, for commands that open their
    own connections and commit (so they never see the rolled-back test transaction)."""

    app: Flask
    engine: Engine


@contextmanager
def scratch_portal(
    database_url: str, smtp_port: int, folder: Path, prefix: str, seed: Callable[[Session], None]
) -> Iterator[ScratchPortal]:
    """A ``ScratchPortal`` whose database ``seed`` filled (and committed), dropped afterwards."""
    with scratch_database(database_url, folder, prefix) as url:
        engine = create_db_engine(url)
        try:
            schema.upgrade(engine)
            with Session(engine) as session:
                seed(session)
                session.commit()
            app = create_app(app_overrides(url, smtp_port, folder / "instance"))
            try:
                yield ScratchPortal(app, engine)
            finally:
                with app.app_context():
                    db.engine.dispose()
        finally:
            engine.dispose()
