"""A consumer with something in every table, for the erasure tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import MetaData, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.accounts.social.models import LinkedIdentity, PendingIdentityLink
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent import service as consent_service
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change, Notary
from vrm_portal.history.models import Interaction
from vrm_portal.interests import service as interests_service

GIVEN_NAME = "Zéphyrine"
FAMILY_NAME = "Quillard-Erasable"
PHONE = "+33612349876"
ADDRESS = "17 rue des Oubliés\n75011 Paris"


@dataclass(frozen=True)
class Footprint:
    """What identifies the consumer: none of it may survive an erasure."""

    account_id: int
    subject_key: str
    needles: tuple[str, ...]


def give_everything(session: Session, notary: Notary, account: Account) -> Footprint:
    """Profile, consents at two brands (one withdrawn, one pending double opt-in),
    interests, a plan, an interaction, a linked identity and a pending link."""
    account.given_name, account.family_name = GIVEN_NAME, FAMILY_NAME
    account.phone, account.postal_address = PHONE, ADDRESS
    change = Change(CollectionMethod.PORTAL, "en", utcnow())
    for brand, key in [
        ("aurore-automobiles", "sms-offers"),
        ("aurore-automobiles", "personalised-offers"),
        ("aurore-automobiles", "email-offers"),  # waits for the confirmation link
        ("maison-berlingot", "analytics"),
        ("maison-berlingot", "sms-offers"),
    ]:
        purpose = consent_service.find_purpose(session, brand, key)
        consent_service.grant(
            session, notary, account, purpose, shown_version=purpose.current_version, change=change
        )
    withdrawn = consent_service.find_purpose(session, "maison-berlingot", "analytics")
    consent_service.withdraw(session, notary, account, withdrawn, change=change)
    aurore = brand_by_slug(session, "aurore-automobiles")
    assert aurore is not None
    interests_service.set_interests(session, account, aurore, {"electric-vehicles"})
    interests_service.state_intent(
        session,
        account,
        interests_service.IntentInput(
            category="replace-vehicle",
            summary="A family estate car",
            horizon_months=6,
            budget_min=20000,
            budget_max=30000,
            brand_slugs=frozenset({"aurore-automobiles"}),
        ),
        utcnow().date(),
    )
    session.add(
        Interaction(
            interaction_id=str(uuid.uuid4()),
            account_id=account.id,
            brand_id=aurore.id,
            type="service-visit",
            occurred_at=utcnow() - timedelta(days=3),
            summary=f"Service visit for {GIVEN_NAME}",
            body={"type": "service-visit", "summary": f"Service visit for {GIVEN_NAME}"},
            request_hash="0" * 64,
        )
    )
    session.add(
        LinkedIdentity(
            account_id=account.id,
            provider="keycloak",
            subject="kc-erasable-42",
            email_seen=account.email,
        )
    )
    session.add(
        PendingIdentityLink(
            account_id=account.id,
            provider="google",
            subject="g-erasable-43",
            email=account.email,
            expires_at=utcnow() + timedelta(hours=1),
        )
    )
    session.commit()
    return Footprint(
        account.id,
        account.subject_key,
        (
            account.email,
            GIVEN_NAME,
            FAMILY_NAME,
            PHONE,
            "rue des Oubliés",
            "kc-erasable-42",
            "g-erasable-43",
            "A family estate car",
        ),
    )


def rows_mentioning(session: Session, metadata: MetaData, needles: tuple[str, ...]) -> list[str]:
    """Every ``table: row`` of the whole database whose text contains one of ``needles``."""
    found = []
    for table in metadata.sorted_tables:
        for row in session.execute(select(table)):
            text = repr(tuple(row))
            if any(needle in text for needle in needles):
                found.append(f"{table.name}: {text[:200]}")
    return found


def rows_of_account(session: Session, metadata: MetaData, account_id: int) -> dict[str, int]:
    """How many rows each table holds for ``account_id`` (tables with that column)."""
    counts = {}
    for table in metadata.sorted_tables:
        column = table.c.get("account_id")
        if column is None:
            continue
        count = len(session.execute(select(column).where(column == account_id)).all())
        if count:
            counts[table.name] = count
    accounts = metadata.tables["accounts"]
    if session.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first():
        counts["accounts"] = 1
    return counts
