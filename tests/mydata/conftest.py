"""Fixtures for the "My data" tests: the demo brands, Alice signed in, and her history."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.consent.conftest import alice, catalogue, notary
from tests.history.conftest import brand, record
from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change, Notary

__all__ = ["alice", "brand", "catalogue", "notary", "record"]


@pytest.fixture
def consent(db_session: Session, notary: Notary) -> Callable[..., None]:
    """``consent(account, brand, key, "grant" | "withdraw", at=...)`` through the service."""

    def apply(
        account: Account,
        brand: str,
        key: str,
        action: str = "grant",
        *,
        at: datetime | None = None,
        method: CollectionMethod = CollectionMethod.IMPORT,
    ) -> None:
        purpose = service.find_purpose(db_session, brand, key)
        change = Change(method, "en", at or utcnow())
        if action == "grant":
            result = service.grant(
                db_session,
                notary,
                account,
                purpose,
                shown_version=purpose.current_version,
                change=change,
            )
        else:
            result = service.withdraw(db_session, notary, account, purpose, change=change)
        assert result.outcome is service.Outcome.RECORDED, result
        db_session.commit()

    return apply


def markers(client: FlaskClient, path: str = "/my-data/") -> list[str]:
    """The ``data-marker`` of each timeline entry on the page, in page order."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return re.findall(r'data-marker="([^"]+)"', page.get_data(as_text=True))


def next_link(html: str, rel: str = "next") -> str | None:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}"', html)
    return match.group(1).replace("&amp;", "&") if match else None
