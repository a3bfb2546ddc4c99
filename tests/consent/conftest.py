"""Fixtures for the consent tests: the demo catalogue, a notary, and a change factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import sign_in
from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.catalogue import PurposeText
from vrm_portal.consent.models import CollectionMethod, ConsentEvent, Purpose
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


@pytest.fixture
def alice(client: FlaskClient, make_account: Callable[..., Account], catalogue: None) -> Account:
    """Alice, with an account, signed in in the test's main browser (catalogue loaded)."""
    account = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    return account


def purpose_of(session: Session, brand: str, key: str) -> Purpose:
    return service.find_purpose(session, brand, key)


def events_of(session: Session, account: Account | None = None) -> list[ConsentEvent]:
    """The ledger's events in chain order (only ``account``'s when given)."""
    query = select(ConsentEvent).order_by(ConsentEvent.seq)
    if account is not None:
        query = query.where(ConsentEvent.subject_key == account.subject_key)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def new_text(marker: str = "v2") -> PurposeText:
    """A changed purpose text, to publish as the next version."""
    return PurposeText(
        title_en=f"Offers chosen from your interests ({marker})",
        title_fr=f"Offres choisies selon vos centres d'intérêt ({marker})",
        text_en=f"We now also use your plans to choose offers ({marker}).",
        text_fr=f"Nous utilisons aussi vos projets pour choisir les offres ({marker}).",
    )
