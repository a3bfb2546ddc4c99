"""A believable consent history for the demo consumer, recorded through the real service.

The history is dated in the past, and everything it leans on is dated before it: the
staff accounts exist, the group publishes its catalogue, the consumer signs up, then
gives and withdraws consents
(each brand's relationship starts with the consumer's first consent to it); later
Aurore Automobiles connects its CRM, records two interactions and reads the consumer.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account, AccountEvent, EmailToken, EventKind, TokenPurpose
from vrm_portal.api import projection
from vrm_portal.brands.models import ApiClient, Brand, BrandRelationship
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod, ConsentState
from vrm_portal.consent.service import Change, Notary
from vrm_portal.demo.catalogue import date_demo_catalogue
from vrm_portal.history.models import AccessKind, AccessRecord, Interaction, InteractionType
from vrm_portal.history.recorder import access_row
from vrm_portal.interests import service as interests

#: The demo's calendar, in days before the seeding (see the module's docstring).
STAFF_CREATED_DAYS_AGO = 190
CATALOGUE_PUBLISHED_DAYS_AGO = 180
CONSUMER_REGISTERED_DAYS_AGO = 125
CRM_CONNECTED_DAYS_AGO = 60

#: (days ago, brand, purpose, give or withdraw), oldest first.
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
    date_demo_catalogue(session, now - timedelta(days=CATALOGUE_PUBLISHED_DAYS_AGO))
    date_sign_up(session, consumer, now - timedelta(days=CONSUMER_REGISTERED_DAYS_AGO))
    first_consent: dict[int, datetime] = {}
    for days_ago, brand, key, give in DEMO_CHANGES:
        purpose = service.find_purpose(session, brand, key)
        change = Change(CollectionMethod.IMPORT, "en", now - timedelta(days=days_ago))
        first_consent.setdefault(purpose.brand_id, change.now)
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
    # Each relationship was created just now, by the first (back-dated) consent to its brand.
    for relationship in session.scalars(
        select(BrandRelationship).where(
            BrandRelationship.account_id == consumer.id,
            BrandRelationship.brand_id.in_(first_consent),
        )
    ):
        relationship.created_at = first_consent[relationship.brand_id]
    session.flush()
    return len(DEMO_CHANGES)


def date_sign_up(session: Session, account: Account, created_at: datetime) -> None:
    """Date a demo account's creation, and what it recorded then, back to ``created_at``
    (never forward): its password, its verified address a few minutes later, its
    registration or staff role event, its verification link."""
    if account.created_at <= created_at:
        return
    account.created_at = created_at
    account.password_changed_at = created_at
    account.email_verified_at = created_at + timedelta(minutes=4)
    creation = (EventKind.REGISTERED.value, EventKind.STAFF_ROLE_GRANTED.value)
    for event in session.scalars(
        select(AccountEvent).where(
            AccountEvent.account_id == account.id,
            AccountEvent.kind.in_(creation),
            AccountEvent.created_at > created_at,
        )
    ):
        event.created_at = created_at
    for token in session.scalars(
        select(EmailToken).where(
            EmailToken.account_id == account.id,
            EmailToken.purpose == TokenPurpose.VERIFY_EMAIL.value,
            EmailToken.created_at > created_at,
        )
    ):
        token.expires_at = created_at + (token.expires_at - token.created_at)
        token.created_at = created_at
    session.flush()


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
    client.created_at = min(client.created_at, now - timedelta(days=CRM_CONNECTED_DAYS_AGO))
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
