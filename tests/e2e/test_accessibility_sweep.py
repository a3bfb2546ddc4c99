"""axe-core on the pages the journeys do not reach: link problems, error pages, the 429
page, forgotten password and email change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import unique_email

pytestmark = pytest.mark.e2e


def test_signed_out_pages_and_error_pages_are_accessible(page: Page, check_a11y):
    page.goto("/password/forgot")
    check_a11y(page, "the forgotten password page")
    page.get_by_role("button", name="Send me a reset link").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter your email address")
    check_a11y(page, "the forgotten password page with an error")

    page.goto("/password/reset/not-a-real-token")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check_a11y(page, "a reset link that cannot be used")

    page.goto("/verify-email/not-a-real-token")
    expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
    check_a11y(page, "a verification link that cannot be used")

    response = page.goto("/no-such-page")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    check_a11y(page, "the 404 page")


def test_the_too_many_attempts_page_says_when_to_retry(page: Page, make_account, check_a11y):
    email = make_account()
    for _attempt in range(6):
        page.goto("/login")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password", exact=True).fill(PASSWORD + " wrong")
        page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many attempts")
    expect(page.get_by_text(re.compile(r"try again in"))).to_be_visible()
    check_a11y(page, "the 429 page")


def test_the_email_change_pages_are_accessible(page: Page, make_account, check_a11y):
    email = make_account()
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto("/account/email")
    check_a11y(page, "the change email page")
    page.get_by_label("New email address").fill(unique_email("moved"))
    page.get_by_label("Current password").fill("not my password at all")
    page.get_by_role("button", name="Send confirmation link").click()
    expect(page.get_by_role("alert")).to_contain_text("Your current password is not right.")
    check_a11y(page, "the change email page with an error")
