"""Brands record interactions: validated, idempotent, shown to the consumer."""

from __future__ import annotations

from sqlalchemy import func, select

from vrm_portal.history.models import Interaction

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _body(**changes):
    body = {
        "type": "purchase",
        "occurred_at": "2026-11-20T10:30:00+01:00",
        "summary": "Bought winter tyres",
        "reference": "INV-2026-0042",
        "amount": {"value": "480.00", "currency": "EUR"},
        "details": {"store": "Lyon Est", "items": 4},
    }
    body.update(changes)
    return body


def _count(db_session):
    return db_session.scalar(select(func.count()).select_from(Interaction))


def test_an_interaction_is_recorded_for_the_consumer(
    brand_api, make_account, consents, pairwise, db_session
):
    alice = make_account("alice@example.com")
    consents(alice, "aurore-automobiles", grant=("analytics",))
    api = brand_api()
    consumer_id = pairwise(alice, "aurore-automobiles")
    response = api.post(f"/api/v1/consumers/{consumer_id}/interactions", json=_body())
    assert response.status_code == 201, response.json
    body = response.json
    assert body["consumer_id"] == consumer_id
    assert body["occurred_at"] == "2026-11-20T09:30:00.000000Z"
    assert body["amount"] == {"value": "480.00", "currency": "EUR"}
    stored = db_session.scalar(select(Interaction))
    assert stored.account_id == alice.id
    assert stored.summary == "Bought winter tyres"


def test_a_retry_with_the_same_key_records_once(
    brand_api, make_account, consents, pairwise, db_session
):
    alice = make_account("alice@example.com")
    consents(alice, "aurore-automobiles", grant=("analytics",))
    api = brand_api()
    path = f"/api/v1/consumers/{pairwise(alice, 'aurore-automobiles')}/interactions"
    first = api.post(path, json=_body(), headers={"Idempotency-Key": "order-42"})
    again = api.post(path, json=_body(), headers={"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json == again.json
    assert _count(db_session) == 1
    reused = api.post(
        path, json=_body(summary="Something else"), headers={"Idempotency-Key": "order-42"}
    )
    assert reused.status_code == 422
    assert reused.json["type"].endswith("idempotency-key-reused")
    other = api.post(path, json=_body(), headers={"Idempotency-Key": "order-43"})
    assert other.status_code == 201
    assert _count(db_session) == 2


def test_bad_bodies_get_a_precise_problem_and_record_nothing(
    brand_api, make_account, consents, pairwise, db_session
):
    alice = make_account("alice@example.com")
    consents(alice, "aurore-automobiles", grant=("analytics",))
    api = brand_api()
    path = f"/api/v1/consumers/{pairwise(alice, 'aurore-automobiles')}/interactions"
    cases = {
        "type": _body(type="teleportation"),
        "occurred_at": _body(occurred_at="2026-11-20T10:30:00"),
        "summary": _body(summary=" "),
        "amount.value": _body(amount={"value": "12.345", "currency": "EUR"}),
        "amount.currency": _body(amount={"value": "12", "currency": "euro"}),
        "unexpected": _body(unexpected=True),
    }
    for field, body in cases.items():
        response = api.post(path, json=body)
        assert response.status_code == 422, (field, response.json)
        assert response.mimetype == "application/problem+json"
        assert field in [error["field"] for error in response.json["errors"]], response.json
    future = api.post(path, json=_body(occurred_at="2999-01-01T00:00:00Z"))
    assert future.status_code == 422
    not_json = api.http.post(
        path, data="type=purchase", headers=api.headers(**{"Content-Type": "text/plain"})
    )
    assert not_json.status_code == 415
    broken = api.http.post(
        path, data="{", headers=api.headers(**{"Content-Type": "application/json"})
    )
    assert broken.status_code == 400
    bad_key = api.post(path, json=_body(), headers={"Idempotency-Key": "é" * 3})
    assert bad_key.status_code == 400
    assert _count(db_session) == 0


def test_unknown_or_another_brands_consumer_is_404(
    brand_api, make_account, consents, pairwise, db_session
):
    alice = make_account("alice@example.com")
    consents(alice, "maison-berlingot", grant=("analytics",))
    api = brand_api("aurore-automobiles")
    for consumer_id in (UNKNOWN, pairwise(alice, "maison-berlingot"), "x"):
        response = api.post(f"/api/v1/consumers/{consumer_id}/interactions", json=_body())
        assert response.status_code == 404
    assert _count(db_session) == 0
