"""Fixtures for the brand space: brands, signed-in staff (through the real TOTP step),
and a brand operator's browser."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pyotp
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD, submit
from tests.consent.conftest import catalogue
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import brand_by_slug

__all__ = ["catalogue"]

BRAND = "aurore-automobiles"
OTHER_BRAND = "maison-berlingot"


def enrol_staff(client: FlaskClient, email: str) -> str:
    """Sign in with the password and enrol an authenticator app, as a new staff member
    does; returns the TOTP key."""
    response = submit(client, "/login", {"email": email, "password": PASSWORD})
    assert response.location == "/login/two-factor/setup", response.location
    page = client.get("/login/two-factor/setup").get_data(as_text=True)
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert match, page
    secret = match.group(1).replace(" ", "")
    code = pyotp.TOTP(secret).at(time.time())
    done = submit(client, "/login/two-factor/setup", {"code": code})
    assert done.status_code == 302, done.get_data(as_text=True)
    return secret


@dataclass
class Staff:
    account: Account
    browser: FlaskClient


@pytest.fixture
def brand(db_session: Session, catalogue: None) -> Brand:
    found = brand_by_slug(db_session, BRAND)
    assert found is not None
    return found


@pytest.fixture
def other_brand(db_session: Session, catalogue: None) -> Brand:
    found = brand_by_slug(db_session, OTHER_BRAND)
    assert found is not None
    return found


@pytest.fixture
def staff(
    make_account: Callable[..., Account], new_browser: Callable[..., FlaskClient], client
) -> Callable[..., Staff]:
    """``staff(role, brand=None, email=...)``: a staff member signed in with their code."""

    def make(role: StaffRole, brand: Brand | None = None, email: str | None = None) -> Staff:
        email = email or f"{role.value}-{brand.slug if brand else 'all'}@example.com"
        account = make_account(
            email, role=role, staff_brand_id=brand.id if brand is not None else None
        )
        browser = new_browser()
        enrol_staff(browser, email)
        return Staff(account, browser)

    return make


@pytest.fixture
def operator(staff: Callable[..., Staff], brand: Brand) -> Staff:
    """A brand operator of Aurore Automobiles, signed in."""
    return staff(StaffRole.BRAND_OPERATOR, brand)


class _Forms(HTMLParser):
    """The hidden inputs of each form on a page, by the form's action."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self._action = values.get("action") or ""
            self.forms.setdefault(self._action, {})
        elif tag == "input" and self._action is not None and values.get("type") == "hidden":
            self.forms[self._action][values.get("name") or ""] = values.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._action = None


def hidden_inputs(html: str, action: str) -> dict[str, str]:
    parser = _Forms()
    parser.feed(html)
    assert action in parser.forms, f"no form posting to {action}; forms: {list(parser.forms)}"
    return parser.forms[action]


def send(browser: FlaskClient, action: str, data: dict[str, Any], *, page: str) -> Any:
    """Post ``data`` to ``action`` with the hidden inputs (CSRF token, one-time key) of
    that form on ``page``, as a browser does."""
    html = browser.get(page).get_data(as_text=True)
    return browser.post(action, data={**hidden_inputs(html, action), **data})


def send_again(
    browser: FlaskClient, action: str, hidden: dict[str, str], data: dict[str, Any]
) -> Any:
    return browser.post(action, data={**hidden, **data})
