"""Registering, listing, disabling endpoints; the outbox written with each change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.webhooks.conftest import BRAND, OTHER_BRAND
from vrm_portal.brands import feed
from vrm_portal.brands.models import Brand, BrandChange, ChangeKind
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent import service as consent
from vrm_portal.webhooks import service
from vrm_portal.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from vrm_portal.webhooks.service import (
    CredentialsInUrl,
    DuplicateEndpoint,
    FragmentInUrl,
    MalformedUrl,
    MissingHost,
    UnknownEndpoint,
    UnsupportedScheme,
    UrlTooLong,
    WebhookError,
)


def brand(db_session, slug: str = BRAND) -> Brand:
    found = brand_by_slug(db_session, slug)
    assert found is not None
    return found


def register(db_session, url: str, slug: str = BRAND, *, allow_loopback_http: bool = False):
    return service.register_endpoint(
        db_session,
        brand(db_session, slug),
        url,
        allow_loopback_http=allow_loopback_http,
        now=utcnow(),
    )


def deliveries(db_session, endpoint: WebhookEndpoint) -> list[WebhookDelivery]:
    return list(
        db_session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.change_seq)
            .execution_options(populate_existing=True)
        )
    )


def test_registering_gives_a_secret_shown_once(db_session, catalogue):
    endpoint, secret = register(db_session, "https://hooks.example.com/vrm?x=1")
    assert endpoint.id is not None
    assert endpoint.url == "https://hooks.example.com/vrm?x=1"
    assert secret.startswith("whsec_")
    assert len(secret) >= 6 + 43
    assert endpoint.secret == secret
    _other, second = register(db_session, "https://hooks.example.com/other")
    assert second != secret


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://127.9.8.7/hook",
        "http://[::1]:9/h",
        "http://localhost/h",
    ],
)
def test_plain_http_only_to_this_machine_and_only_outside_production(db_session, catalogue, url):
    endpoint, _secret = register(db_session, url, allow_loopback_http=True)
    assert endpoint.url == url
    with pytest.raises(UnsupportedScheme, match="use https://"):
        register(db_session, url, OTHER_BRAND, allow_loopback_http=False)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://hooks.example.com/h", UnsupportedScheme),
        ("http://10.0.0.1/h", UnsupportedScheme),
        ("http://127.0.0.1.example.com/h", UnsupportedScheme),
        ("ftp://hooks.example.com/h", UnsupportedScheme),
        ("hooks.example.com/h", UnsupportedScheme),
        ("https:///h", MissingHost),
        ("https://user:pass@hooks.example.com/h", CredentialsInUrl),
        ("https://token@hooks.example.com/h", CredentialsInUrl),
        ("https://hooks.example.com/h#part", FragmentInUrl),
        ("https://hooks.example.com/h#", FragmentInUrl),
        ("https://hooks.example.com:99999/h", MalformedUrl),
        ("https://hooks.example.com/a b", MalformedUrl),
        ("https://hooks.example.com/" + "a" * 480, UrlTooLong),
    ],
)
def test_unusable_urls_are_refused_with_a_named_reason(db_session, catalogue, url, error):
    with pytest.raises(error) as refused:
        register(db_session, url, allow_loopback_http=True)
    assert isinstance(refused.value, WebhookError)
    assert isinstance(refused.value, ValueError)
    assert str(refused.value)
    assert db_session.scalar(select(WebhookEndpoint.id)) is None


def test_one_active_endpoint_per_url_and_brand(db_session, catalogue):
    first, _ = register(db_session, "https://hooks.example.com/h")
    with pytest.raises(DuplicateEndpoint, match=f"#{first.id}"):
        register(db_session, " https://hooks.example.com/h ")
    register(db_session, "https://hooks.example.com/h", OTHER_BRAND)
    service.disable_endpoint(db_session, brand(db_session), first.id, utcnow())
    again, _ = register(db_session, "https://hooks.example.com/h")
    assert again.id != first.id


def test_a_consent_change_queues_a_delivery_in_its_own_transaction(
    db_session, catalogue, make_account, notary, change
):
    endpoint, _ = register(db_session, "https://hooks.example.com/h")
    elsewhere, _ = register(db_session, "https://hooks.example.com/h", OTHER_BRAND)
    account = make_account("dora@example.com")
    db_session.commit()

    purpose = consent.find_purpose(db_session, BRAND, "sms-offers")
    consent.grant(db_session, notary, account, purpose, shown_version=1, change=change())
    db_session.flush()
    assert len(deliveries(db_session, endpoint)) == 1
    db_session.rollback()
    assert deliveries(db_session, endpoint) == []

    purpose = consent.find_purpose(db_session, BRAND, "sms-offers")
    consent.grant(db_session, notary, account, purpose, shown_version=1, change=change())
    db_session.commit()
    (queued,) = deliveries(db_session, endpoint)
    assert queued.status == DeliveryStatus.PENDING
    assert queued.attempts == 0
    assert queued.next_attempt_at <= utcnow()
    assert queued.brand_id == brand(db_session).id
    change_row = db_session.get(BrandChange, (queued.brand_id, queued.change_seq))
    assert change_row is not None
    assert change_row.kind == "consent.granted"
    assert deliveries(db_session, elsewhere) == []


def test_a_disabled_endpoint_gets_nothing_new(db_session, catalogue):
    active, _ = register(db_session, "https://hooks.example.com/a")
    disabled, _ = register(db_session, "https://hooks.example.com/b")
    first = utcnow()
    assert service.disable_endpoint(db_session, brand(db_session), disabled.id, first) is disabled
    service.disable_endpoint(db_session, brand(db_session), disabled.id, first + timedelta(hours=1))
    assert disabled.disabled_at == first
    feed.append_change(
        db_session, brand(db_session).id, ChangeKind.CONSENT_WITHDRAWN, "p-1", utcnow(), {}
    )
    assert len(deliveries(db_session, active)) == 1
    assert deliveries(db_session, disabled) == []


def test_only_the_brands_own_endpoints_can_be_disabled(db_session, catalogue):
    endpoint, _ = register(db_session, "https://hooks.example.com/h")
    with pytest.raises(UnknownEndpoint):
        service.disable_endpoint(db_session, brand(db_session, OTHER_BRAND), endpoint.id, utcnow())
    with pytest.raises(UnknownEndpoint):
        service.disable_endpoint(db_session, brand(db_session), endpoint.id + 1000, utcnow())
    assert endpoint.disabled_at is None


def queue(db_session, count: int, slug: str = BRAND) -> None:
    for _ in range(count):
        feed.append_change(
            db_session, brand(db_session, slug).id, ChangeKind.CONSENT_GRANTED, "p-1", utcnow(), {}
        )
    db_session.flush()


def test_the_list_counts_each_endpoints_queue_and_shows_its_last_attempt(db_session, catalogue):
    busy, _ = register(db_session, "https://hooks.example.com/busy")
    queue(db_session, 4)
    quiet, _ = register(db_session, "https://hooks.example.com/quiet")
    register(db_session, "https://hooks.example.com/h", OTHER_BRAND)
    one, two, three, _four = deliveries(db_session, busy)
    one.status, two.status, three.status = "delivered", "delivered", "failed"
    now = utcnow()
    db_session.add_all(
        [
            WebhookAttempt(delivery_id=one.id, attempted_at=now, status_code=204, duration_ms=3),
            WebhookAttempt(
                delivery_id=three.id,
                attempted_at=now,
                status_code=None,
                error="connection failed",
                duration_ms=1,
            ),
        ]
    )
    db_session.flush()

    overviews = service.list_endpoints(db_session, brand(db_session))
    assert [o.endpoint.id for o in overviews] == [busy.id, quiet.id]
    busy_view, quiet_view = overviews
    assert (busy_view.pending, busy_view.delivered, busy_view.failed) == (1, 2, 1)
    assert busy_view.last_attempt is not None
    assert busy_view.last_attempt.error == "connection failed"
    assert (quiet_view.pending, quiet_view.delivered, quiet_view.failed) == (0, 0, 0)
    assert quiet_view.last_attempt is None


def test_retry_puts_failed_deliveries_back_in_the_queue(db_session, catalogue):
    first, _ = register(db_session, "https://hooks.example.com/1")
    second, _ = register(db_session, "https://hooks.example.com/2")
    queue(db_session, 2)
    for delivery in deliveries(db_session, first) + deliveries(db_session, second):
        delivery.status, delivery.attempts = DeliveryStatus.FAILED, 10
    delivered = deliveries(db_session, first)[1]
    delivered.status = DeliveryStatus.DELIVERED
    db_session.flush()
    now = utcnow()

    assert service.retry_failed(db_session, first.id, now) == 1
    again, done = deliveries(db_session, first)
    assert (again.status, again.attempts, again.next_attempt_at) == ("pending", 0, now)
    assert done.status == DeliveryStatus.DELIVERED
    assert {d.status for d in deliveries(db_session, second)} == {"failed"}

    assert service.retry_failed(db_session, None, now) == 2
    assert {d.status for d in deliveries(db_session, second)} == {"pending"}
    assert service.retry_failed(db_session, None, now) == 0
    with pytest.raises(UnknownEndpoint):
        service.retry_failed(db_session, second.id + 1000, now)
