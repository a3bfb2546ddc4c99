"""Signing in with wrong details: one generic message, whether or not the account exists."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import unique_email

pytestmark = pytest.mark.e2e

GENERIC_LOGIN_ERROR = "The email address or the password is not right."


def try_to_sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_wrong_password_and_unknown_email_get_the_same_generic_error(
    page: Page, make_account, check_a11y
):
    email = make_account()
    main_nav = page.get_by_role("navigation", name="Main")

    # A known address with the wrong password: the generic error, and no session.
    try_to_sign_in(page, email, PASSWORD + " typo")
    error_summary = page.get_by_role("alert")
    expect(error_summary).to_contain_text(GENERIC_LOGIN_ERROR)
    expect(page).to_have_title(re.compile(r"^Error: Sign in"))
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(main_nav.get_by_role("link", name="Sign in")).to_be_visible()
    expect(main_nav.get_by_role("link", name="My account")).to_have_count(0)
    check_a11y(page, "the login page with an error")
    known_address_text = error_summary.inner_text()

    # An address nobody uses: word for word the same message.
    try_to_sign_in(page, unique_email("nobody"), PASSWORD)
    expect(error_summary).to_contain_text(GENERIC_LOGIN_ERROR)
    assert error_summary.inner_text() == known_address_text
    expect(main_nav.get_by_role("link", name="My account")).to_have_count(0)

    # Signed-in pages stay closed.
    page.goto("/account/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
