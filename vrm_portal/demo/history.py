"""A believable consent history for the demo consumer, recorded through the real service."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.api import projection
from vrm_portal.brands.models import ApiClient, Brand, BrandRelationship
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod, ConsentState
from vrm_portal.consent.service import Change, Notary
from vrm_portal.history.models import AccessKind, AccessRecord, Interaction, InteractionType
from vrm_portal.history.recorder import access_row
from vrm_portal.interests import service as interests

#: (days ago, brand, purpose, give or withdraw)
DEMO_CHANGES = (
    (120, "aurore-automobiles", "personalised-offers", True),
    (120, "aurore-automobiles", "email-offers", True),
    (95, "maison-berlingot", "partner-sharing", True),
    (60, "maison-berlingot", "email-offers", True),
    (30, "maison-berlingot", "partner-sharing", False),
    (12, "domaine-des-coteaux", "analytics", True),
)


def seed_demo_history(session: Session, notary: Notary, consumer: Account) -> int:
    """Record the demo changes once (nothing when the consumer already has consents)."""
    if session.scalar(select(exists().where(ConsentState.account_id == consumer.id))):
        return 0
    now = utcnow()
    for days_ago, brand, key, give in DEMO_CHANGES:
        purpose = service.find_purpose(session, brand, key)
        change = Change(CollectionMethod.IMPORT, "en", now - timedelta(days=days_ago))
        if give:
            service.grant(
                session,
                notary,
                consumer,
                purpose,
                shown_version=purpose.current_version,
                change=change,
            )
        else:
            service.withdraw(session, notary, consumer, purpose, change=change)
    return len(DEMO_CHANGES)


#: (days ago, type, summary, body extras) of what Aurore Automobiles recorded.
DEMO_INTERACTIONS: tuple[tuple[int, InteractionType, str, dict[str, Any]], ...] = (
    (
        40,
        InteractionType.SERVICE_VISIT,
        "Annual service, Lyon Est workshop",
        {"reference": "RO-77812", "amount": {"value": "189.90", "currency": "EUR"}},
    ),
    (9, InteractionType.TEST_DRIVE, "Test drive of the electric estate", {}),
)


def seed_demo_activity(session: Session, consumer: Account, client: ApiClient) -> None:
    """What the demo consumer did and what the demo brand did with it, for "My data":
    an interest, a plan, interactions recorded by Aurore Automobiles, and reads of the
    consumer by its demo CRM (one lookup a week ago, one page of the list yesterday)."""
    now = utcnow()
    brand = session.get(Brand, client.brand_id)
    assert brand is not None
    relationship = session.scalars(
        select(BrandRelationship).where(
            BrandRelationship.account_id == consumer.id, BrandRelationship.brand_id == brand.id
        )
    ).one()
    # The history above is backdated; so is the relationship it started.
    relationship.created_at = now - timedelta(days=max(d for d, *_ in DEMO_CHANGES))
    interests.set_interests(session, consumer, brand, {"electric-vehicles"})
    interests.state_intent(
        session,
        consumer,
        interests.IntentInput(
            category="replace-vehicle",
            summary="A family estate car, electric if possible",
            horizon_months=6,
            budget_min=25000,
            budget_max=35000,
            brand_slugs=frozenset({brand.slug}),
        ),
        now.date(),
    )
    for days_ago, interaction_type, summary, extra in DEMO_INTERACTIONS:
        occurred_at = now - timedelta(days=days_ago)
        body = {
            "type": interaction_type.value,
            "occurred_at": occurred_at.isoformat(),
            "summary": summary,
        }
        session.add(
            Interaction(
                interaction_id=str(uuid.uuid4()),
                account_id=consumer.id,
                brand_id=brand.id,
                client_pk=client.id,
                type=interaction_type.value,
                occurred_at=occurred_at,
                recorded_at=occurred_at + timedelta(hours=2),
                summary=summary,
                body=body | extra,
                request_hash=hashlib.sha256(repr(body | extra).encode()).hexdigest(),
            )
        )
    session.flush()
    fields = projection.consumer(session, brand.id, relationship.pairwise_id, now).fields
    for days_ago, read in ((7, AccessKind.CONSUMER), (1, AccessKind.CONSUMERS)):
        session.execute(
            insert(AccessRecord).values(
                access_row(
                    brand_id=brand.id,
                    client_pk=client.id,
                    kind=read,
                    scope="consumers:read",
                    first_id=relationship.id,
                    last_id=relationship.id,
                    count=1,
                    fields=fields,
                    now=now - timedelta(days=days_ago),
                )
            )
        )
