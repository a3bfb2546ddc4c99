"""Fixtures for the webhook tests: a real HTTP receiver, and a committed outbox database.

The receiver is a werkzeug server on 127.0.0.1 (port chosen by the system) that records
every request and can be told to answer 500, redirect, hang or be down altogether.

The worker opens its own sessions and commits, so its tests run on a scratch database of
the suite's engine (SQLite file or PostgreSQL database), migrated once, with the demo
catalogue; each test starts with no endpoint, delivery or attempt.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.conftest import scratch_database
from tests.consent.conftest import catalogue, change, notary  # noqa: F401 -- shared fixtures
from vrm_portal import schema
from vrm_portal.brands import feed
from vrm_portal.brands.models import Brand, BrandChange, ChangeKind
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.webhooks import service
from vrm_portal.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

BRAND = "maison-berlingot"
OTHER_BRAND = "aurore-automobiles"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class Receiver:
    """A brand's webhook server. ``mode``: ok, error (500), redirect, hang; or ``down()``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.mode = "ok"
        #: Answer 500 to this many requests, then go back to ``mode``.
        self.fail_next = 0
        #: Called with each request before it is answered (runs in the server's thread).
        self.on_request: Callable[[Received], None] | None = None
        self.delay = 0.0
        self.problems: list[BaseException] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.up()

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [request.path for request in self.received]

    def seqs(self, path: str | None = None) -> list[int]:
        return [
            json.loads(request.body)["seq"]
            for request in self.received
            if path is None or request.path == path
        ]

    def up(self) -> None:
        self._release.clear()
        server = make_server(
            "127.0.0.1", self.port, self._app, threaded=True, request_handler=_QuietHandler
        )
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Close the port: connections are refused until ``up()``."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        received = Received(request.path, dict(request.headers), request.get_data())
        with self._lock:
            self.received.append(received)
            failing = self.fail_next > 0
            self.fail_next = max(0, self.fail_next - 1)
        if self.on_request is not None:
            try:
                self.on_request(received)
            except BaseException as exc:  # reported by the test, not lost in this thread
                self.problems.append(exc)
        if self.delay:
            self._release.wait(self.delay)
        if failing or self.mode == "error":
            response = Response("x" * 2000, status=500)
        elif self.mode == "redirect":
            response = Response("moved", status=302, headers={"Location": "/moved"})
        elif self.mode == "hang":
            self._release.wait(10)
            response = Response("late", status=200)
        else:
            response = Response("", status=204)
        return response(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.down()
    assert not running.problems, running.problems


@dataclass
class Outbox:
    """The committed outbox database, and shortcuts to arrange and read it."""

    engine: Engine
    url: str

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def brand(self, session: Session, slug: str = BRAND) -> Brand:
        brand = brand_by_slug(session, slug)
        assert brand is not None
        return brand

    def add_endpoint(self, url: str, slug: str = BRAND) -> tuple[int, str]:
        with self.session() as session:
            endpoint, secret = service.register_endpoint(
                session, self.brand(session, slug), url, allow_loopback_http=True, now=utcnow()
            )
            session.commit()
            return endpoint.id, secret

    def add_change(
        self, slug: str = BRAND, *, at: datetime | None = None, purpose: str = "sms-offers"
    ) -> int:
        """A committed feed change of ``slug`` (queued for its active endpoints)."""
        with self.session() as session:
            seq = feed.append_change(
                session,
                self.brand(session, slug).id,
                ChangeKind.CONSENT_GRANTED,
                "0b6f1a52-3c43-4bb6-9b49-0c1f0e0d7a11",
                at or utcnow(),
                {"purpose": purpose, "version": 1, "method": "portal", "expires_at": None},
            )
            session.commit()
            return seq

    def change(self, seq: int, slug: str = BRAND) -> BrandChange:
        with self.session() as session:
            change = session.get(BrandChange, (self.brand(session, slug).id, seq))
            assert change is not None
            return change

    def deliveries(self, endpoint_id: int) -> list[WebhookDelivery]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint_id)
                    .order_by(WebhookDelivery.change_seq)
                )
            )

    def attempts(self, delivery_id: int) -> list[WebhookAttempt]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(WebhookAttempt)
                    .where(WebhookAttempt.delivery_id == delivery_id)
                    .order_by(WebhookAttempt.id)
                )
            )


@pytest.fixture(scope="session")
def outbox_database(database_url: str, tmp_path_factory: pytest.TempPathFactory):
    with scratch_database(database_url, tmp_path_factory.mktemp("webhooks"), "webhooks") as url:
        engine = create_db_engine(url, pool_size=10, max_overflow=10)
        try:
            schema.upgrade(engine)
            with Session(engine) as session:
                load_demo_catalogue(session)
                session.commit()
            yield engine, url
        finally:
            engine.dispose()


@pytest.fixture
def outbox(outbox_database: tuple[Engine, str]) -> Outbox:
    engine, url = outbox_database
    with Session(engine) as session:
        session.execute(delete(WebhookAttempt))
        session.execute(delete(WebhookDelivery))
        session.execute(delete(WebhookEndpoint))
        session.commit()
    return Outbox(engine, url)
