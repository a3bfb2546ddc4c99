"""Fixtures for the consent tests: the demo catalogue, a notary, and a change factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from vrm_portal.clock import utcnow
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change, Notary
from vrm_portal.consent.signing import signing_key
from vrm_portal.demo.catalogue import load_demo_catalogue


@pytest.fixture
def catalogue(db_session: Session) -> None:
    """The demo brand group: three brands with their purposes and topics."""
    load_demo_catalogue(db_session)
    db_session.commit()


@pytest.fixture
def notary(app: Flask) -> Notary:
    with app.app_context():
        return Notary(signing_key(), "http://localhost")


@pytest.fixture
def change() -> Callable[..., Change]:
    def make(
        method: CollectionMethod = CollectionMethod.PORTAL,
        *,
        now: datetime | None = None,
        language: str = "en",
        gpc_signal: bool = False,
    ) -> Change:
        return Change(method, language, now or utcnow(), gpc_signal=gpc_signal)

    return make
