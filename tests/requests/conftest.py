"""Fixtures for the data-request tests: Alice with a full history, and Bob beside her."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.api.conftest import BrandApi, brand_api, consents, pairwise
from tests.consent.conftest import alice, catalogue, notary
from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.history.models import Interaction, InteractionType
from vrm_portal.interests import service as interests
from vrm_portal.requests.models import ExportFormat
from vrm_portal.requests.service import record_export

__all__ = ["alice", "brand_api", "catalogue", "consents", "notary", "pairwise"]

AURORE = "aurore-automobiles"
BERLINGOT = "maison-berlingot"


def find_brand(session: Session, slug: str) -> Brand:
    found = brand_by_slug(session, slug)
    assert found is not None, slug
    return found


def add_interaction(
    session: Session, account: Account, brand: Brand, summary: str, **body: Any
) -> Interaction:
    interaction = Interaction(
        interaction_id=str(uuid.uuid4()),
        account_id=account.id,
        brand_id=brand.id,
        type=InteractionType.PURCHASE.value,
        occurred_at=utcnow() - timedelta(days=2),
        summary=summary,
        body={"type": InteractionType.PURCHASE.value, "summary": summary, **body},
        request_hash="0" * 64,
    )
    session.add(interaction)
    session.flush()
    return interaction


@dataclass
class Story:
    """Alice's history, and what the test needs to check the export against."""

    alice: Account
    bob: Account
    api: BrandApi
    alice_interaction: Interaction
    bob_interaction: Interaction
    bob_pairwise: str


@pytest.fixture
def story(
    db_session: Session,
    alice: Account,
    make_account: Callable[..., Account],
    consents: Callable[..., None],
    brand_api: Callable[..., BrandApi],
    pairwise: Callable[[Account, str], str],
) -> Story:
    """Alice gave and withdrew consents (with receipts), chose interests, stated a plan,
    has interactions, was read by a brand through the API (a lookup and a feed page) and
    downloaded her data once before. Bob is another consumer of the same brand, read
    alone by it, with his own interaction: none of his data may reach Alice's export."""
    bob = make_account("bob@example.com")
    consents(alice, AURORE, grant=("analytics", "personalised-offers"))
    consents(alice, AURORE, withdraw=("analytics",))
    consents(alice, BERLINGOT, grant=("analytics",))
    aurore = find_brand(db_session, AURORE)
    interests.set_interests(db_session, alice, aurore, {"electric-vehicles"})
    interests.state_intent(
        db_session,
        alice,
        interests.IntentInput(
            category="replace-vehicle",
            summary="A family estate car",
            horizon_months=6,
            budget_min=15000,
            budget_max=25000,
            brand_slugs=frozenset({AURORE}),
        ),
        utcnow().date(),
    )
    alice_interaction = add_interaction(
        db_session, alice, aurore, "Bought winter tyres", amount={"value": "420", "currency": "EUR"}
    )
    record_export(db_session, alice, ExportFormat.CSV, utcnow() - timedelta(days=30))
    db_session.commit()

    api = brand_api(AURORE)
    assert api.get(f"/api/v1/consumers/{pairwise(alice, AURORE)}").status_code == 200
    feed = api.get("/api/v1/changes?after=0")
    assert feed.status_code == 200
    last_seq = int(feed.json["next_cursor"])

    consents(bob, AURORE, grant=("analytics",))
    bob_interaction = add_interaction(db_session, bob, aurore, "Bob's secret purchase")
    db_session.commit()
    bob_pairwise = pairwise(bob, AURORE)
    assert api.get(f"/api/v1/consumers/{bob_pairwise}").status_code == 200
    # A feed page holding only Bob's entries.
    assert api.get(f"/api/v1/changes?after={last_seq}").json["items"]
    return Story(alice, bob, api, alice_interaction, bob_interaction, bob_pairwise)
