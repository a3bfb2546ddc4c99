"""Idempotency keys belong to the API client that sent them, not to its whole brand
(outside security test, "Account security", Low: a second client of the brand reusing a
key was replayed the first client's interaction)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from vrm_portal.history.models import Interaction

KEY = {"Idempotency-Key": "order-42"}


def _body(summary: str) -> dict[str, object]:
    return {
        "type": "purchase",
        "occurred_at": "2026-11-20T10:30:00+01:00",
        "summary": summary,
        "details": {"store": "Lyon Est"},
    }


@pytest.fixture
def path(make_account, consents, pairwise) -> str:
    alice = make_account("alice@example.com")
    consents(alice, "aurore-automobiles", grant=("analytics",))
    return f"/api/v1/consumers/{pairwise(alice, 'aurore-automobiles')}/interactions"


def test_another_client_of_the_brand_is_never_replayed_the_first_clients_interaction(
    brand_api, path, db_session
):
    crm, shop = brand_api(), brand_api()
    first = crm.post(path, json=_body("Bought winter tyres"), headers=KEY)
    assert first.status_code == 201

    for body in (_body("Bought winter tyres"), _body("Something else")):
        reused = shop.post(path, json=body, headers=KEY)
        assert "Idempotent-Replayed" not in reused.headers
        assert reused.status_code in (201, 422), reused.get_data(as_text=True)
        assert first.json["interaction_id"] not in reused.get_data(as_text=True)
    # The first client's own retry is still a replay.
    again = crm.post(path, json=_body("Bought winter tyres"), headers=KEY)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    stored = db_session.scalars(
        select(Interaction).where(Interaction.idempotency_key == "order-42")
    ).all()
    # One interaction per client and key: the first client's, and the second one's if any.
    assert len({row.client_pk for row in stored}) == len(stored) >= 1


def test_each_client_has_its_own_idempotency_keys(brand_api, path, db_session):
    crm, shop = brand_api(), brand_api()
    assert crm.post(path, json=_body("Bought winter tyres"), headers=KEY).status_code == 201
    second = shop.post(path, json=_body("Bought winter tyres"), headers=KEY)
    assert second.status_code == 201, second.get_data(as_text=True)
    assert "Idempotent-Replayed" not in second.headers
    assert (
        shop.post(path, json=_body("Bought winter tyres"), headers=KEY).headers[
            "Idempotent-Replayed"
        ]
        == "true"
    )
    assert db_session.scalar(select(func.count()).select_from(Interaction)) == 2
