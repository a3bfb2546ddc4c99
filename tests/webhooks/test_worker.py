"""The worker against a real HTTP receiver, on a committed outbox database.

Time is passed to ``deliver_due`` as ``now``, so the retry schedule is walked through
without waiting for it.
"""

from __future__ import annotations

import json
import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.webhooks.conftest import BRAND, OTHER_BRAND, Outbox, Receiver
from vrm_portal.brands.feed import change_document
from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.webhooks import service, worker
from vrm_portal.webhooks.models import DeliveryStatus, WebhookDelivery
from vrm_portal.webhooks.signing import verify
from vrm_portal.webhooks.worker import MAX_ATTEMPTS, RETRY_DELAYS, Summary, deliver_due


def test_a_change_is_posted_signed_with_its_feed_entry_as_body(outbox: Outbox, receiver):
    endpoint_id, secret = outbox.add_endpoint(receiver.url())
    seq = outbox.add_change()
    now = utcnow()

    assert deliver_due(outbox.engine, now) == Summary(delivered=1)

    (request,) = receiver.received
    (delivery,) = outbox.deliveries(endpoint_id)
    assert verify(secret, request.headers, request.body, now) == str(delivery.id)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Webhook-Signature"].startswith("v1=")
    change = outbox.change(seq)
    assert json.loads(request.body) == change_document(
        change.seq, change.kind, change.pairwise_id, change.occurred_at, change.data
    )
    assert json.loads(request.body)["type"] == "consent.granted"
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 1
    assert delivery.delivered_at is not None
    (attempt,) = outbox.attempts(delivery.id)
    assert (attempt.status_code, attempt.error) == (204, "")
    assert deliver_due(outbox.engine, now + timedelta(hours=1)) == Summary()
    assert len(receiver.received) == 1


def test_no_transaction_is_held_open_while_posting(outbox: Outbox, receiver):
    """While the brand is being called, the claim is committed and the database free."""
    endpoint_id, _ = outbox.add_endpoint(receiver.url())
    outbox.add_change()
    now = utcnow()
    seen = []

    def look(_request):
        with outbox.engine.begin() as connection:  # a writer: would wait on a held lock
            connection.execute(text("UPDATE brands SET name = name WHERE id = -1"))
            seen.append(
                connection.execute(
                    select(WebhookDelivery.status, WebhookDelivery.next_attempt_at).where(
                        WebhookDelivery.endpoint_id == endpoint_id
                    )
                ).one()
            )

    receiver.on_request = look
    assert deliver_due(outbox.engine, now, timeout=3).delivered == 1
    ((status, next_attempt_at),) = seen
    assert status == DeliveryStatus.PENDING
    assert next_attempt_at >= now + worker.LEASE  # the claim, already committed


def test_an_unreachable_brand_loses_nothing_and_then_receives_in_order(
    outbox: Outbox, receiver: Receiver
):
    endpoint_id, _ = outbox.add_endpoint(receiver.url())
    seqs = [outbox.add_change() for _ in range(3)]
    receiver.down()
    now = utcnow()

    delays = []
    for _ in range(len(RETRY_DELAYS)):
        assert deliver_due(outbox.engine, now, timeout=1) == Summary(retrying=1)
        head, *rest = outbox.deliveries(endpoint_id)
        assert [d.attempts for d in rest] == [0, 0]  # nothing overtakes the head
        delays.append(head.next_attempt_at - now)
        assert deliver_due(outbox.engine, head.next_attempt_at - timedelta(seconds=1)) == Summary()
        now = head.next_attempt_at

    for delay, base in zip(delays, RETRY_DELAYS, strict=True):
        assert base * 0.89 <= delay <= base * 1.11
    assert delays == sorted(delays)
    attempts = outbox.attempts(head.id)
    assert len(attempts) == len(RETRY_DELAYS)
    assert all(a.status_code is None and "connection failed" in a.error for a in attempts)

    receiver.up()
    assert deliver_due(outbox.engine, now) == Summary(delivered=3)
    assert receiver.seqs() == seqs
    assert all(d.status == DeliveryStatus.DELIVERED for d in outbox.deliveries(endpoint_id))


def test_a_failing_head_holds_back_its_endpoint_only(outbox: Outbox, receiver: Receiver):
    stuck_id, _ = outbox.add_endpoint(receiver.url("/stuck"))
    fine_id, _ = outbox.add_endpoint(receiver.url("/fine"))
    seqs = [outbox.add_change() for _ in range(3)]
    receiver.fail_next = 1  # the first request, to /stuck, gets a 500
    now = utcnow()

    assert deliver_due(outbox.engine, now) == Summary(delivered=3, retrying=1)
    assert receiver.seqs("/stuck") == seqs[:1]
    assert receiver.seqs("/fine") == seqs
    head = outbox.deliveries(stuck_id)[0]
    (attempt,) = outbox.attempts(head.id)
    assert attempt.status_code == 500
    assert attempt.error.startswith("HTTP 500: xxx")
    assert len(attempt.error) == worker.ERROR_TEXT_LIMIT

    assert deliver_due(outbox.engine, head.next_attempt_at) == Summary(delivered=3)
    assert receiver.seqs("/stuck") == [seqs[0], *seqs]
    assert all(d.status == "delivered" for d in outbox.deliveries(stuck_id))
    assert all(d.attempts == 1 for d in outbox.deliveries(fine_id))


def test_redirects_are_not_followed(outbox: Outbox, receiver: Receiver):
    endpoint_id, _ = outbox.add_endpoint(receiver.url())
    outbox.add_change()
    receiver.mode = "redirect"

    assert deliver_due(outbox.engine, utcnow()) == Summary(retrying=1)
    assert receiver.paths() == ["/hooks"]
    (delivery,) = outbox.deliveries(endpoint_id)
    (attempt,) = outbox.attempts(delivery.id)
    assert attempt.status_code == 302
    assert "not followed" in attempt.error
    assert delivery.status == DeliveryStatus.PENDING


def test_a_brand_that_does_not_answer_times_out(outbox: Outbox, receiver: Receiver):
    endpoint_id, _ = outbox.add_endpoint(receiver.url())
    outbox.add_change()
    receiver.mode = "hang"

    assert deliver_due(outbox.engine, utcnow(), timeout=0.3) == Summary(retrying=1)
    (delivery,) = outbox.deliveries(endpoint_id)
    (attempt,) = outbox.attempts(delivery.id)
    assert attempt.status_code is None
    assert attempt.error == "timed out after 0.3 s"
    assert attempt.duration_ms >= 250


def test_it_gives_up_after_the_last_attempt_and_retry_queues_it_again(
    outbox: Outbox, receiver: Receiver
):
    endpoint_id, _ = outbox.add_endpoint(receiver.url())
    first, second = outbox.add_change(), outbox.add_change()
    receiver.mode = "error"
    now = utcnow()
    for _ in range(MAX_ATTEMPTS - 1):
        assert deliver_due(outbox.engine, now) == Summary(retrying=1)
        now = outbox.deliveries(endpoint_id)[0].next_attempt_at
    assert deliver_due(outbox.engine, now) == Summary(failed=1, retrying=1)

    gave_up, blocked = outbox.deliveries(endpoint_id)
    assert (gave_up.status, gave_up.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)
    assert len(outbox.attempts(gave_up.id)) == MAX_ATTEMPTS
    assert blocked.attempts == 1  # the next change is no longer held back

    receiver.mode = "ok"
    with outbox.session() as session:
        assert service.retry_failed(session, endpoint_id, now) == 1
        session.commit()
    assert deliver_due(outbox.engine, blocked.next_attempt_at) == Summary(delivered=2)
    assert receiver.seqs()[-2:] == [first, second]
    assert [d.status for d in outbox.deliveries(endpoint_id)] == ["delivered", "delivered"]


def test_it_gives_up_three_days_after_the_first_attempt(outbox: Outbox, receiver: Receiver):
    endpoint_id, _ = outbox.add_endpoint(receiver.url())
    outbox.add_change()
    receiver.mode = "error"
    now = utcnow()
    assert deliver_due(outbox.engine, now) == Summary(retrying=1)
    assert deliver_due(outbox.engine, now + timedelta(days=3, seconds=1)) == Summary(failed=1)
    (delivery,) = outbox.deliveries(endpoint_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 2)


def test_a_disabled_endpoint_is_sent_nothing(outbox: Outbox, receiver: Receiver):
    endpoint_id, _ = outbox.add_endpoint(receiver.url())
    outbox.add_change()
    with outbox.session() as session:
        brand = session.scalar(select(Brand).where(Brand.slug == BRAND))
        service.disable_endpoint(session, brand, endpoint_id, utcnow())
        session.commit()
    outbox.add_change()

    assert deliver_due(outbox.engine, utcnow()) == Summary()
    assert receiver.received == []
    (queued_before,) = outbox.deliveries(endpoint_id)
    assert queued_before.status == DeliveryStatus.PENDING


def test_a_worker_that_dies_after_claiming_loses_nothing(outbox: Outbox, receiver: Receiver):
    endpoint_id, _ = outbox.add_endpoint(receiver.url())
    outbox.add_change()
    now = utcnow()
    (claim,) = worker.claim_due(outbox.engine, now)  # ... and the worker is killed here

    assert deliver_due(outbox.engine, now + timedelta(minutes=4)) == Summary()
    assert receiver.received == []
    assert deliver_due(outbox.engine, now + worker.LEASE) == Summary(delivered=1)
    assert len(receiver.received) == 1

    # The first worker comes back to life with an answer: too late, it changes nothing.
    late = worker.Response(now, 500, "HTTP 500", 1)
    assert worker.record(outbox.engine, claim, late, random.Random(1)) == "stale"
    (delivery,) = outbox.deliveries(endpoint_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)
    assert len(outbox.attempts(delivery.id)) == 2  # but the log keeps what happened


def test_brands_receive_only_their_own_changes(outbox: Outbox, receiver: Receiver):
    mine, _ = outbox.add_endpoint(receiver.url("/mine"))
    theirs, _ = outbox.add_endpoint(receiver.url("/theirs"), OTHER_BRAND)
    own = outbox.add_change(BRAND)
    other = outbox.add_change(OTHER_BRAND)
    assert deliver_due(outbox.engine, utcnow()) == Summary(delivered=2)
    assert receiver.seqs("/mine") == [own]
    assert receiver.seqs("/theirs") == [other]
    assert len(outbox.deliveries(mine)) == len(outbox.deliveries(theirs)) == 1


def test_two_workers_on_postgresql_never_send_a_delivery_twice(outbox: Outbox, receiver: Receiver):
    if outbox.engine.dialect.name != "postgresql":
        pytest.skip(
            "SKIP LOCKED claims need PostgreSQL (set VRM_TEST_DATABASE_URL); on SQLite the "
            "write lock serialises claims and one worker is the supported set-up"
        )
    endpoints = [outbox.add_endpoint(receiver.url(f"/e{n}"))[0] for n in range(4)]
    seqs = [outbox.add_change() for _ in range(15)]
    receiver.delay = 0.01
    start = threading.Barrier(2)
    summaries: list[Summary] = []

    def run() -> None:
        start.wait(timeout=30)
        summaries.append(deliver_due(outbox.engine, utcnow(), batch=3))

    workers = [threading.Thread(target=run) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)

    ids = [request.headers["Webhook-Id"] for request in receiver.received]
    assert len(ids) == len(set(ids)) == 4 * 15
    assert sum(s.delivered for s in summaries) == 4 * 15
    assert all(s.delivered for s in summaries)  # both workers did take part
    for n, endpoint_id in enumerate(endpoints):
        assert receiver.seqs(f"/e{n}") == seqs
        assert all(d.attempts == 1 for d in outbox.deliveries(endpoint_id))
