"""Fixtures for the interests tests: the demo catalogue, consent helpers, signed-in Alice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.accounts.conftest import alice
from tests.consent.conftest import catalogue, change, notary
from vrm_portal.accounts.models import Account, AccountEvent
from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent import service as consent
from vrm_portal.interests import service
from vrm_portal.interests.models import DeclaredInterest, Intent, Topic

__all__ = ["alice", "catalogue", "change", "notary"]

PURPOSE = "personalised-offers"


@pytest.fixture
def brand(db_session: Session, catalogue: None) -> Callable[[str], Brand]:
    """Look a demo brand up by slug."""

    def find(slug: str) -> Brand:
        found = brand_by_slug(db_session, slug)
        assert found is not None, slug
        return found

    return find


@pytest.fixture
def personalisation(
    db_session: Session, notary: consent.Notary, change: Callable[..., consent.Change]
) -> Callable[..., None]:
    """Give (or withdraw) the brand's personalisation consent for ``account``."""

    def choose(account: Account, slug: str, *, give: bool = True) -> None:
        purpose = consent.find_purpose(db_session, slug, PURPOSE)
        if give:
            consent.grant(
                db_session,
                notary,
                account,
                purpose,
                shown_version=purpose.current_version,
                change=change(),
            )
        else:
            consent.withdraw(db_session, notary, account, purpose, change=change())
        db_session.commit()

    return choose


@pytest.fixture
def plan(db_session: Session, brand: Callable[[str], Brand]) -> Callable[..., Intent]:
    """State an intent through the service (committed), with sensible defaults."""

    def state(
        account: Account,
        *,
        brands: tuple[str, ...] = ("aurore-automobiles",),
        category: str = "replace-vehicle",
        summary: str = "a family estate car",
        horizon_months: int = 6,
        budget_min: int | None = 15000,
        budget_max: int | None = 25000,
        today: date | None = None,
    ) -> Intent:
        intent = service.state_intent(
            db_session,
            account,
            service.IntentInput(
                category=category,
                summary=summary,
                horizon_months=horizon_months,
                budget_min=budget_min,
                budget_max=budget_max,
                brand_slugs=frozenset(brands),
            ),
            today or utcnow().date(),
        )
        db_session.commit()
        return intent

    return state


def interest_keys(db_session: Session, account: Account) -> set[str]:
    """``brand-slug/topic-key`` of each interest the account holds, as stored now."""
    db_session.expire_all()
    rows = db_session.execute(
        select(Brand.slug, Topic.key)
        .join(Topic, Topic.brand_id == Brand.id)
        .join(DeclaredInterest, DeclaredInterest.topic_id == Topic.id)
        .where(DeclaredInterest.account_id == account.id)
    )
    return {f"{slug}/{key}" for slug, key in rows}


def intents_in_db(db_session: Session, account: Account) -> list[Intent]:
    db_session.expire_all()
    return list(
        db_session.scalars(
            select(Intent).where(Intent.account_id == account.id).order_by(Intent.id)
        )
    )


def events_of(db_session: Session, account: Account, kind: str) -> list[AccountEvent]:
    db_session.expire_all()
    return list(
        db_session.scalars(
            select(AccountEvent)
            .where(AccountEvent.account_id == account.id, AccountEvent.kind == kind)
            .order_by(AccountEvent.id)
        )
    )
