"""A brand hears of interest and plan changes only while it may see them: under an active
personalisation consent (outside security test, "Account security", Low: the feed told a
brand with only the analytics consent that something changed)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand, BrandChange
from vrm_portal.clock import utcnow
from vrm_portal.consent import service as consent
from vrm_portal.interests import service

AURORE, BERLINGOT = "aurore-automobiles", "maison-berlingot"


def _grant(db_session: Session, notary, change, account: Account, slug: str, key: str) -> None:
    purpose = consent.find_purpose(db_session, slug, key)
    consent.grant(
        db_session,
        notary,
        account,
        purpose,
        shown_version=purpose.current_version,
        change=change(),
    )
    db_session.commit()


def _feed(db_session: Session, brand: Brand) -> list[str]:
    return list(
        db_session.scalars(
            select(BrandChange.kind)
            .where(BrandChange.brand_id == brand.id)
            .order_by(BrandChange.seq)
        )
    )


def _plan(db_session: Session, account: Account, *slugs: str):
    intent = service.state_intent(
        db_session,
        account,
        service.IntentInput(
            category="replace-vehicle",
            summary="A smaller car",
            horizon_months=6,
            budget_min=None,
            budget_max=None,
            brand_slugs=frozenset(slugs),
        ),
        utcnow().date(),
    )
    db_session.commit()
    return intent


def test_a_brand_with_only_the_analytics_consent_hears_nothing_of_interests_or_plans(
    db_session: Session,
    make_account: Callable[..., Account],
    brand: Callable[[str], Brand],
    notary,
    change,
) -> None:
    alice = make_account("alice@example.com")
    _grant(db_session, notary, change, alice, AURORE, "analytics")
    aurore = brand(AURORE)

    service.set_interests(db_session, alice, aurore, {"electric-vehicles"})
    db_session.commit()
    intent = _plan(db_session, alice, AURORE)
    service.withdraw_intent(db_session, alice, intent.id, utcnow())
    db_session.commit()

    assert _feed(db_session, aurore) == ["consent.granted"]


def test_of_two_brands_told_of_a_plan_only_the_one_with_personalisation_hears_it(
    db_session: Session,
    make_account: Callable[..., Account],
    brand: Callable[[str], Brand],
    personalisation: Callable[..., None],
    notary,
    change,
) -> None:
    alice = make_account("alice@example.com")
    personalisation(alice, AURORE)
    _grant(db_session, notary, change, alice, BERLINGOT, "analytics")

    intent = _plan(db_session, alice, AURORE, BERLINGOT)
    service.withdraw_intent(db_session, alice, intent.id, utcnow())
    service.set_interests(db_session, alice, brand(BERLINGOT), {"workshops"})
    service.set_interests(db_session, alice, brand(AURORE), {"new-models"})
    db_session.commit()

    assert _feed(db_session, brand(AURORE)) == [
        "consent.granted",
        "intents.changed",
        "intents.changed",
        "interests.changed",
    ]
    assert _feed(db_session, brand(BERLINGOT)) == ["consent.granted"]


def test_after_the_personalisation_consent_is_withdrawn_the_brand_hears_nothing_more(
    db_session: Session,
    make_account: Callable[..., Account],
    brand: Callable[[str], Brand],
    personalisation: Callable[..., None],
) -> None:
    alice = make_account("alice@example.com")
    personalisation(alice, AURORE)
    service.set_interests(db_session, alice, brand(AURORE), {"new-models"})
    db_session.commit()
    personalisation(alice, AURORE, give=False)

    service.set_interests(db_session, alice, brand(AURORE), {"events"})
    _plan(db_session, alice, AURORE)

    assert _feed(db_session, brand(AURORE)) == [
        "consent.granted",
        "interests.changed",
        "consent.withdrawn",
    ]
