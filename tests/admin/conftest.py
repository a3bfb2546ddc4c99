"""Fixtures for the administration console: the demo catalogue, and browsers signed in
as each kind of staff member (a server-side session, as after the second factor)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.consent.conftest import catalogue, notary
from vrm_portal.accounts import auth_sessions
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.brands.service import brand_by_slug

__all__ = ["catalogue", "notary"]


def signed_in(browser: FlaskClient, db_session: Session, account: Account) -> FlaskClient:
    """``browser`` with a live session of ``account`` (what sign-in leaves behind)."""
    _row, token = auth_sessions.start_session(
        db_session, account, remember=False, lifetime=timedelta(hours=1)
    )
    db_session.commit()
    with browser.session_transaction() as cookie:
        cookie["_user_id"] = token
        cookie["_fresh"] = True
    return browser


@pytest.fixture
def as_role(
    new_browser: Callable[..., FlaskClient],
    db_session: Session,
    make_account: Callable[..., Account],
    catalogue: None,
) -> Callable[..., tuple[FlaskClient, Account]]:
    """``as_role("admin")``: a new browser signed in as a new account of that role
    (``"consumer"`` for none; a brand operator is bound to maison-berlingot)."""

    def make(role: str, email: str | None = None) -> tuple[FlaskClient, Account]:
        brand_id = None
        staff_role = None if role == "consumer" else StaffRole(role)
        if staff_role is StaffRole.BRAND_OPERATOR:
            brand = brand_by_slug(db_session, "maison-berlingot")
            assert brand is not None
            brand_id = brand.id
        account = make_account(
            email or f"{role}@example.com", role=staff_role, staff_brand_id=brand_id
        )
        return signed_in(new_browser(), db_session, account), account

    return make


def page_text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


def csrf_of(browser: FlaskClient, path: str) -> str:
    import re

    page = browser.get(path)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page_text(page))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


def post(browser: FlaskClient, path: str, data: dict[str, object], form_page: str) -> object:
    return browser.post(path, data={"csrf_token": csrf_of(browser, form_page), **data})
