"""Fixtures for the history tests: the demo brands, Alice signed in, and recorded interactions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.consent.conftest import alice, catalogue
from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.history.models import Interaction, InteractionType

__all__ = ["alice", "catalogue"]


@pytest.fixture
def brand(db_session: Session, catalogue: None) -> Callable[[str], Brand]:
    def find(slug: str) -> Brand:
        found = brand_by_slug(db_session, slug)
        assert found is not None, slug
        return found

    return find


@pytest.fixture
def record(db_session: Session) -> Callable[..., Interaction]:
    """Store an interaction as the brand API would: ``record(account, brand, summary, ...)``."""

    def make(
        account: Account,
        brand: Brand,
        summary: str = "Bought a box of chocolates",
        *,
        type: InteractionType = InteractionType.PURCHASE,
        occurred_at: datetime | None = None,
        ago: timedelta = timedelta(days=1),
        **body: Any,
    ) -> Interaction:
        interaction = Interaction(
            interaction_id=str(uuid.uuid4()),
            account_id=account.id,
            brand_id=brand.id,
            type=type.value,
            occurred_at=occurred_at or utcnow() - ago,
            summary=summary,
            body={"type": type.value, "summary": summary, **body},
            request_hash="0" * 64,
        )
        db_session.add(interaction)
        db_session.commit()
        return interaction

    return make
