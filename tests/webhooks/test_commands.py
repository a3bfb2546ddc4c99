"""The operator commands, through Flask's CLI runner.

``webhooks-add/list/disable/retry`` run in the test's rolled-back transaction (the app's
session joins it). ``webhooks-deliver`` opens its own connections, so it runs against a
second app over the committed outbox database.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import app_overrides
from tests.webhooks.conftest import BRAND, Outbox, Receiver
from vrm_portal import create_app
from vrm_portal.brands import feed
from vrm_portal.brands.models import Brand, ChangeKind
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.webhooks.commands import (
    COMMANDS,
    add_endpoint,
    deliver,
    disable_endpoint,
    list_endpoints,
    retry_failed,
)
from vrm_portal.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from vrm_portal.webhooks.signing import verify


def run(app: Flask, command, *args: str):
    return app.test_cli_runner().invoke(command, args=list(args))


def refused(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert message in result.output
    assert "Traceback" not in result.output


def test_commands_are_exported_for_the_vrm_group():
    names = {command.name for command in COMMANDS}
    assert names == {
        "webhooks-add",
        "webhooks-list",
        "webhooks-disable",
        "webhooks-deliver",
        "webhooks-retry",
    }


def test_add_prints_the_id_and_the_secret_once(app, connection, db_session, catalogue):
    result = run(app, add_endpoint, "--brand", BRAND, "--url", "https://hooks.example.com/a")
    assert result.exit_code == 0, result.output
    endpoint = db_session.scalars(select(WebhookEndpoint)).one()
    assert f"Endpoint #{endpoint.id} added for {BRAND}" in result.output
    assert endpoint.secret in result.output

    result = run(app, add_endpoint, "--brand", BRAND, "--url", "http://127.0.0.1:9/b", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    created = db_session.get(WebhookEndpoint, document["id"])
    assert created is not None
    assert document["secret"] == created.secret
    assert document["secret"].startswith("whsec_")
    assert (document["brand"], document["url"]) == (BRAND, "http://127.0.0.1:9/b")

    listing = run(app, list_endpoints, "--brand", BRAND)
    listing_json = run(app, list_endpoints, "--brand", BRAND, "--json")
    for output in (listing.output, listing_json.output):
        assert created.secret not in output
        assert endpoint.secret not in output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/a", "use https://"),
        ("https://user:pw@hooks.example.com/a", "must not hold a user name"),
        ("https://hooks.example.com/a#x", "#fragment"),
        ("https://", "no host"),
    ],
)
def test_add_refuses_bad_urls_clearly(app, connection, db_session, catalogue, url, message):
    refused(run(app, add_endpoint, "--brand", BRAND, "--url", url), message)
    assert db_session.scalar(select(WebhookEndpoint.id)) is None


def test_add_refuses_plain_http_in_production(app, connection, catalogue, monkeypatch):
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    result = run(app, add_endpoint, "--brand", BRAND, "--url", "http://127.0.0.1:9/b")
    refused(result, "use https://")
    assert "127.0.0.1" not in result.output.split("use https://")[1]


def test_add_refuses_a_duplicate_and_an_unknown_brand(app, connection, catalogue):
    url = "https://hooks.example.com/a"
    assert run(app, add_endpoint, "--brand", BRAND, "--url", url).exit_code == 0
    refused(run(app, add_endpoint, "--brand", BRAND, "--url", url), "already has an active")
    refused(run(app, add_endpoint, "--brand", "nobody", "--url", url), "no brand 'nobody'")


def test_list_shows_counts_and_the_last_attempt(app, connection, db_session, catalogue):
    assert "has no webhook endpoint" in run(app, list_endpoints, "--brand", BRAND).output
    run(app, add_endpoint, "--brand", BRAND, "--url", "https://hooks.example.com/a")
    brand = db_session.scalars(select(Brand).where(Brand.slug == BRAND)).one()
    for _ in range(2):
        feed.append_change(db_session, brand.id, ChangeKind.CONSENT_GRANTED, "p-1", utcnow(), {})
    db_session.commit()

    result = run(app, list_endpoints, "--brand", BRAND, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["brand"] == BRAND
    (endpoint,) = document["endpoints"]
    assert endpoint["url"] == "https://hooks.example.com/a"
    assert (endpoint["pending"], endpoint["delivered"], endpoint["failed"]) == (2, 0, 0)
    assert endpoint["disabled_at"] is None
    assert endpoint["last_attempt"] is None
    text = run(app, list_endpoints, "--brand", BRAND).output
    assert "https://hooks.example.com/a (active)" in text
    assert "pending 2, delivered 0, failed 0" in text


def test_disable_and_retry(app, connection, db_session, catalogue):
    run(app, add_endpoint, "--brand", BRAND, "--url", "https://hooks.example.com/a")
    endpoint = db_session.scalars(select(WebhookEndpoint)).one()
    brand = db_session.scalars(select(Brand).where(Brand.slug == BRAND)).one()
    feed.append_change(db_session, brand.id, ChangeKind.CONSENT_GRANTED, "p-1", utcnow(), {})
    delivery = db_session.scalars(select(WebhookDelivery)).one()
    delivery.status = DeliveryStatus.FAILED
    db_session.commit()

    result = run(app, retry_failed, "--id", str(endpoint.id))
    assert result.exit_code == 0, result.output
    assert "1 failed delivery(ies) queued again." in result.output
    refused(run(app, retry_failed, "--id", str(endpoint.id + 100)), "no webhook endpoint")
    assert "0 failed" in run(app, retry_failed).output

    result = run(app, disable_endpoint, "--brand", BRAND, "--id", str(endpoint.id))
    assert result.exit_code == 0, result.output
    assert f"Endpoint #{endpoint.id}" in result.output
    db_session.refresh(endpoint)
    assert endpoint.disabled_at is not None
    listing = json.loads(run(app, list_endpoints, "--brand", BRAND, "--json").output)
    assert listing["endpoints"][0]["disabled_at"] is not None
    refused(run(app, disable_endpoint, "--brand", BRAND, "--id", "999999"), "no webhook endpoint")
    refused(run(app, disable_endpoint, "--brand", BRAND), "Missing option '--id'")


@pytest.fixture
def portal(outbox: Outbox, smtp, tmp_path) -> Iterator[Flask]:
    """A second app over the committed outbox database."""
    port, _mailbox = smtp
    app = create_app(app_overrides(outbox.url, port, tmp_path / "instance"))
    yield app
    with app.app_context():
        db.engine.dispose()


def test_deliver_once_sends_what_is_due(portal: Flask, outbox: Outbox, receiver: Receiver):
    endpoint_id, secret = outbox.add_endpoint(receiver.url())
    outbox.add_change()
    outbox.add_change()

    result = run(portal, deliver, "--once")
    assert result.exit_code == 0, result.output
    assert "2 delivered, 0 to retry, 0 given up." in result.output
    assert len(receiver.received) == 2
    for request in receiver.received:
        verify(secret, request.headers, request.body, utcnow())
    assert {d.status for d in outbox.deliveries(endpoint_id)} == {"delivered"}

    receiver.down()
    outbox.add_change()
    result = run(portal, deliver, "--once", "--timeout", "1")
    assert "0 delivered, 1 to retry" in result.output
    last = run(portal, list_endpoints, "--brand", BRAND, "--json")
    (endpoint,) = json.loads(last.output)["endpoints"]
    assert (endpoint["pending"], endpoint["delivered"]) == (1, 2)
    assert "connection failed" in endpoint["last_attempt"]["error"]


def test_deliver_loops_until_stopped(portal: Flask, outbox: Outbox, receiver: Receiver):
    """As under systemd: SIGTERM ends the loop after the current pass."""
    outbox.add_endpoint(receiver.url())
    outbox.add_change()

    def stop_the_worker(_request) -> None:
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
            os.kill(os.getpid(), signal.SIGTERM)

    receiver.on_request = stop_the_worker
    before = signal.getsignal(signal.SIGTERM)
    result = run(portal, deliver, "--interval", "0.1")
    assert result.exit_code == 0, result.output
    assert "1 delivered" in result.output
    assert result.output.rstrip().endswith("Stopped.")
    assert signal.getsignal(signal.SIGTERM) == before
