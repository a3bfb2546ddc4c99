"""Fixtures for the privacy office tests: staff signed in, and a small consent history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.consent.conftest import catalogue, change, notary, purpose_of  # noqa: F401
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod


def sign_in_directly(app: Flask, browser: FlaskClient, account: Account) -> None:
    """Sign ``account`` in ``browser`` as after its second step (staff: TOTP passed)."""
    with app.test_request_context():
        from vrm_portal.accounts import auth_sessions
        from vrm_portal.extensions import db

        _auth, token = auth_sessions.start_session(
            db.session, account, remember=False, lifetime=timedelta(hours=1)
        )
        db.session.commit()
    with browser.session_transaction() as session:
        session["_user_id"] = token
        session["_fresh"] = True


@pytest.fixture
def staff(
    app: Flask, make_account: Callable[..., Account], new_browser: Callable[..., FlaskClient]
) -> Callable[..., tuple[Account, FlaskClient]]:
    """A staff member of ``role``, signed in in a browser of their own."""

    def make(
        role: StaffRole = StaffRole.DPO, email: str = "dpo@example.com", **extra: object
    ) -> tuple[Account, FlaskClient]:
        account = make_account(email, role=role, **extra)
        browser = new_browser()
        sign_in_directly(app, browser, account)
        return account, browser

    return make


@pytest.fixture
def dpo(staff: Callable[..., tuple[Account, FlaskClient]]) -> tuple[Account, FlaskClient]:
    return staff()


@pytest.fixture
def history(db_session: Session, make_account, notary, change, catalogue) -> dict[str, Account]:  # noqa: F811
    """Alice and Bob with a few consent events (7 in all), committed."""
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    analytics = purpose_of(db_session, "aurore-automobiles", "analytics")
    service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
    service.grant(db_session, notary, bob, analytics, shown_version=1, change=change())
    service.withdraw(db_session, notary, alice, sms, change=change())
    service.grant(db_session, notary, alice, analytics, shown_version=1, change=change())
    service.withdraw(db_session, notary, bob, analytics, change=change(CollectionMethod.GPC_SIGNAL))
    service.grant(db_session, notary, bob, sms, shown_version=1, change=change())
    service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
    db_session.commit()
    return {"alice": alice, "bob": bob}
