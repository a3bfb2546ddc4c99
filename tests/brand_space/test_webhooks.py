"""Webhook endpoints in the brand space: add (HTTPS only outside development), test ping,
rotate the signing secret with an overlap, disable, the delivery log and "redeliver"."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.brand_space.conftest import BRAND, hidden_inputs, send
from tests.webhooks.conftest import Outbox, Receiver, outbox, outbox_database, receiver
from vrm_portal.audit.models import StaffAction
from vrm_portal.audit.service import Filters, export_csv
from vrm_portal.brands import feed
from vrm_portal.brands.models import ChangeKind
from vrm_portal.clock import utcnow
from vrm_portal.webhooks import ping, service
from vrm_portal.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookPing,
)
from vrm_portal.webhooks.signing import SignatureError, verify
from vrm_portal.webhooks.worker import Summary, deliver_due

__all__ = ["outbox", "outbox_database", "receiver"]

BASE = f"/brand-space/{BRAND}"


def add(operator, url: str):
    return send(operator.browser, f"{BASE}/webhooks", {"url": url}, page=f"{BASE}/webhooks")


def added(operator, url: str) -> tuple[int, str]:
    response = add(operator, url)
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    endpoint_id = int(re.search(r"Endpoint #(\d+) added", html).group(1))
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', html).group(1)
    return endpoint_id, secret


def do(operator, endpoint_id: int, action: str, data=None):
    page = f"{BASE}/webhooks/{endpoint_id}"
    return send(operator.browser, f"{page}/{action}", data or {}, page=page)


def test_an_endpoint_is_added_and_its_secret_shown_once(operator, receiver, db_session):
    endpoint_id, secret = added(operator, receiver.url())
    assert secret.startswith("whsec_")
    row = db_session.get(WebhookEndpoint, endpoint_id)
    assert row.url == receiver.url()
    assert row.secret == secret
    listing = operator.browser.get(f"{BASE}/webhooks").get_data(as_text=True)
    assert receiver.url() in listing
    for path in (f"{BASE}/webhooks", f"{BASE}/webhooks/{endpoint_id}", f"{BASE}/"):
        assert secret not in operator.browser.get(path).get_data(as_text=True)
    assert secret not in "".join(export_csv(db_session, Filters()))


def test_outside_development_only_https_is_accepted(app, operator, db_session):
    app.config["WEBHOOK_ALLOW_LOOPBACK_HTTP"] = False  # as in production
    try:
        refused = add(operator, "http://127.0.0.1:8080/hooks")
        accepted = add(operator, "https://hooks.aurore.example/vrm")
    finally:
        app.config["WEBHOOK_ALLOW_LOOPBACK_HTTP"] = True
    assert refused.status_code == 422
    assert "The address must start with https://." in refused.get_data(as_text=True)
    assert accepted.status_code == 200
    urls = db_session.scalars(select(WebhookEndpoint.url)).all()
    assert urls == ["https://hooks.aurore.example/vrm"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Enter the address of the endpoint."),
        ("ftp://hooks.example/x", "The address must start with https://"),
        ("http://hooks.example/x", "The address must start with https://"),
        ("https://", "The address has no host name"),
        ("https://user:pw@hooks.example/x", "must not hold a user name or password"),
        ("https://hooks.example/x#top", "must not end with a #fragment"),
        ("https://hooks.example/" + "x" * 500, "at most 500 characters"),
        ("https://hooks.example:99999/x", "not a valid web address"),
        ("https://hooks.example/a b", "not a valid web address"),
        ("https://hooks.example/\x00", "not a valid web address"),
    ],
)
def test_a_bad_address_gets_a_precise_message(operator, db_session, url, message):
    response = add(operator, url)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db_session.scalars(select(WebhookEndpoint)).first() is None


def test_the_same_address_twice_is_refused_and_a_double_submit_adds_one(operator, db_session):
    html = operator.browser.get(f"{BASE}/webhooks").get_data(as_text=True)
    data = {**hidden_inputs(html, f"{BASE}/webhooks"), "url": "https://hooks.example/vrm"}
    assert operator.browser.post(f"{BASE}/webhooks", data=data).status_code == 200
    again = operator.browser.post(f"{BASE}/webhooks", data=data)
    assert again.status_code == 303
    assert "the endpoint below was added then" in operator.browser.get(again.location).get_data(
        as_text=True
    )
    duplicate = add(operator, "https://hooks.example/vrm")
    assert duplicate.status_code == 422
    assert "already has an active endpoint at this address" in duplicate.get_data(as_text=True)
    assert len(db_session.scalars(select(WebhookEndpoint)).all()) == 1


def test_a_refused_duplicate_can_be_corrected_and_sent_again(operator, db_session):
    added(operator, "https://hooks.example/vrm")
    html = operator.browser.get(f"{BASE}/webhooks").get_data(as_text=True)
    hidden = hidden_inputs(html, f"{BASE}/webhooks")
    refused = operator.browser.post(
        f"{BASE}/webhooks", data={**hidden, "url": "https://hooks.example/vrm"}
    )
    assert refused.status_code == 422
    fixed = operator.browser.post(
        f"{BASE}/webhooks", data={**hidden, "url": "https://hooks.example/other"}
    )
    assert fixed.status_code == 200
    assert len(db_session.scalars(select(WebhookEndpoint)).all()) == 2


def test_a_ping_is_signed_and_its_answer_shown_and_logged(operator, receiver, db_session):
    endpoint_id, secret = added(operator, receiver.url())
    response = do(operator, endpoint_id, "ping")
    assert response.status_code == 303
    page = operator.browser.get(response.location).get_data(as_text=True)
    assert re.search(r"Ping answered: HTTP 204 in \d+ ms\.", page)
    (request,) = receiver.received
    webhook_id = verify(secret, request.headers, request.body)
    assert webhook_id.startswith("ping-")
    body = json.loads(request.body)
    assert body["type"] == "ping"
    assert body["endpoint"] == endpoint_id
    (logged,) = db_session.scalars(select(WebhookPing)).all()
    assert logged.status_code == 204
    assert logged.endpoint_id == endpoint_id
    assert '<td data-label="Answer">HTTP 204' in page
    assert db_session.scalars(
        select(StaffAction).where(StaffAction.action == "webhook.pinged")
    ).one().object_id == str(endpoint_id)


def test_a_ping_to_a_receiver_that_is_down_or_failing_is_no_500(
    operator, receiver: Receiver, db_session
):
    endpoint_id, _secret = added(operator, receiver.url())
    receiver.mode = "error"
    failing = do(operator, endpoint_id, "ping")
    assert failing.status_code == 303
    page = operator.browser.get(failing.location).get_data(as_text=True)
    assert "The endpoint answered HTTP 500" in page
    assert "a delivery needs a 2xx answer" in page
    receiver.down()
    down = do(operator, endpoint_id, "ping")
    assert down.status_code == 303
    page = operator.browser.get(down.location).get_data(as_text=True)
    assert "The ping got no answer (connection failed" in page
    codes = db_session.scalars(select(WebhookPing.status_code).order_by(WebhookPing.id)).all()
    assert codes == [500, None]
    receiver.up()


def test_a_ping_that_hangs_ends_after_the_short_timeout(operator, receiver: Receiver, monkeypatch):
    monkeypatch.setattr(ping, "PING_TIMEOUT", 0.5)
    endpoint_id, _secret = added(operator, receiver.url())
    receiver.mode = "hang"
    response = do(operator, endpoint_id, "ping")
    assert response.status_code == 303
    page = operator.browser.get(response.location).get_data(as_text=True)
    assert "timed out after 0.5 s" in page


def test_rotating_signs_with_both_secrets_during_the_overlap(operator, receiver, db_session):
    endpoint_id, old = added(operator, receiver.url())
    rotated = do(operator, endpoint_id, "rotate")
    assert rotated.status_code == 200
    html = rotated.get_data(as_text=True)
    assert "every delivery is signed with both the old and the new secret" in html
    new = re.search(r'<code id="new-secret">([^<]+)</code>', html).group(1)
    assert new != old
    do(operator, endpoint_id, "ping")
    request = receiver.received[-1]
    assert len(request.headers["Webhook-Signature"].split()) == 2
    verify(old, request.headers, request.body)
    verify(new, request.headers, request.body)
    # The overlap is over: the new secret alone signs.
    db_session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
    )
    db_session.commit()
    do(operator, endpoint_id, "ping")
    request = receiver.received[-1]
    verify(new, request.headers, request.body)
    with pytest.raises(SignatureError):
        verify(old, request.headers, request.body)
    for path in (f"{BASE}/webhooks/{endpoint_id}", f"{BASE}/webhooks"):
        body = operator.browser.get(path).get_data(as_text=True)
        assert old not in body
        assert new not in body


def test_the_worker_signs_deliveries_with_both_secrets_during_the_overlap(
    outbox: Outbox, receiver: Receiver
):
    endpoint_id, old = outbox.add_endpoint(receiver.url())
    with outbox.session() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        new = service.rotate_secret(session, endpoint, utcnow(), timedelta(hours=1))
        session.commit()
    outbox.add_change()
    now = utcnow()
    assert deliver_due(outbox.engine, now) == Summary(delivered=1)
    (request,) = receiver.received
    verify(old, request.headers, request.body, now)
    verify(new, request.headers, request.body, now)
    # Two hours on, the old key no longer signs.
    outbox.add_change()
    later = now + timedelta(hours=2)
    deliver_due(outbox.engine, later)
    verify(new, receiver.received[-1].headers, receiver.received[-1].body, later)
    with pytest.raises(SignatureError):
        verify(old, receiver.received[-1].headers, receiver.received[-1].body, later)


def test_disabling_needs_a_tick_and_stops_the_endpoint(operator, receiver, db_session):
    endpoint_id, _ = added(operator, receiver.url())
    unticked = do(operator, endpoint_id, "disable")
    assert unticked.status_code == 422
    assert "Tick the box to confirm." in unticked.get_data(as_text=True)
    assert db_session.get(WebhookEndpoint, endpoint_id).disabled_at is None
    done = do(operator, endpoint_id, "disable", {"disable-confirm": "y"})
    assert done.status_code == 303
    page = operator.browser.get(done.location).get_data(as_text=True)
    assert "Endpoint disabled" in page
    assert "Send a test ping" not in page
    db_session.expire_all()
    assert db_session.get(WebhookEndpoint, endpoint_id).disabled_at is not None
    assert (
        db_session.scalars(select(StaffAction).where(StaffAction.action == "webhook.disabled"))
        .one()
        .before["disabled_at"]
        is None
    )


def _deliveries(db_session, brand, endpoint_id: int, count: int) -> list[WebhookDelivery]:
    for _ in range(count):
        feed.append_change(
            db_session,
            brand.id,
            ChangeKind.CONSENT_WITHDRAWN,
            str(uuid.uuid4()),
            utcnow(),
            {"purpose": "email-offers", "version": 1, "method": "portal"},
        )
    db_session.commit()
    return list(
        db_session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id)
        )
    )


def test_the_delivery_log_shows_status_attempts_next_retry_and_redelivers(
    operator, brand, db_session
):
    endpoint_id, _ = added(operator, "https://hooks.aurore.example/vrm")
    delivered, failed, waiting = _deliveries(db_session, brand, endpoint_id, 3)
    now = utcnow()
    delivered.status, delivered.attempts, delivered.delivered_at = "delivered", 1, now
    failed.status, failed.attempts = "failed", 10
    waiting.attempts, waiting.next_attempt_at = 2, now + timedelta(minutes=10)
    db_session.add_all(
        [
            WebhookAttempt(delivery_id=delivered.id, attempted_at=now, status_code=204),
            WebhookAttempt(
                delivery_id=failed.id,
                attempted_at=now,
                status_code=None,
                error="connection failed: refused",
            ),
        ]
    )
    db_session.commit()
    page = operator.browser.get(f"{BASE}/webhooks/{endpoint_id}").get_data(as_text=True)
    assert page.count("<code>consent.withdrawn</code>") == 3
    assert "Given up" in page
    assert "Delivered" in page
    assert "Waiting" in page
    assert "connection failed: refused" in page
    assert f'datetime="{waiting.next_attempt_at.isoformat(timespec="seconds")}' in page
    # A pending delivery has no "redeliver"; the other two do.
    assert f"/deliveries/{waiting.id}/redeliver" not in page
    action = f"{BASE}/webhooks/{endpoint_id}/deliveries/{failed.id}/redeliver"
    hidden = hidden_inputs(page, action)
    response = operator.browser.post(action, data=hidden)
    assert response.status_code == 303
    assert f"Delivery #{failed.id} is queued again" in operator.browser.get(
        response.location
    ).get_data(as_text=True)
    db_session.expire_all()
    again = db_session.get(WebhookDelivery, failed.id)
    assert (again.status, again.attempts) == (DeliveryStatus.PENDING, 0)
    # Sent twice, the same form does nothing more.
    twice = operator.browser.post(action, data=hidden)
    assert twice.status_code == 303
    assert "the delivery was queued again then" in operator.browser.get(twice.location).get_data(
        as_text=True
    )
    # A delivered one can be sent again too; an unknown one is a 404.
    redo = f"{BASE}/webhooks/{endpoint_id}/deliveries/{delivered.id}/redeliver"
    assert (
        send(operator.browser, redo, {}, page=f"{BASE}/webhooks/{endpoint_id}").status_code == 303
    )
    db_session.expire_all()
    assert db_session.get(WebhookDelivery, delivered.id).status == DeliveryStatus.PENDING
    unknown = f"{BASE}/webhooks/{endpoint_id}/deliveries/999999/redeliver"
    assert (
        operator.browser.post(
            unknown,
            data={
                "redeliver-csrf_token": hidden["redeliver-csrf_token"],
                "redeliver-submission": "a" * 32,
            },
        ).status_code
        == 404
    )
    assert (
        len(
            db_session.scalars(
                select(StaffAction).where(StaffAction.action == "webhook.redelivered")
            ).all()
        )
        == 2
    )


def test_the_delivery_log_is_paged(operator, brand, db_session):
    endpoint_id, _ = added(operator, "https://hooks.aurore.example/vrm")
    rows = _deliveries(db_session, brand, endpoint_id, 30)
    first = operator.browser.get(f"{BASE}/webhooks/{endpoint_id}").get_data(as_text=True)
    assert first.count("<code>consent.withdrawn</code>") == 25
    older = re.search(r'href="([^"]+before=\d+)">Older deliveries', first).group(1)
    second = operator.browser.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert second.count("<code>consent.withdrawn</code>") == 5
    assert f"#{rows[0].id}</th>" in second
    assert "Older deliveries" not in second
    assert operator.browser.get(f"{BASE}/webhooks/{endpoint_id}?before=abc").status_code == 200
