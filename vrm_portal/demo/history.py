"""A believable consent history for the demo consumer, recorded through the real service."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod, ConsentState
from vrm_portal.consent.service import Change, Notary

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
