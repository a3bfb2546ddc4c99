"""Social sign-in in a real browser: "Continue with …", the provider's own page, back
signed in; then the linked sign-in methods in the settings. axe checks every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import unique_email

pytestmark = pytest.mark.e2e


def test_continue_with_a_provider_and_land_signed_in(page: Page, live_server, check_a11y):
    email = unique_email("social")
    main_nav = page.get_by_role("navigation", name="Main")

    page.goto("/login")
    continue_with = page.get_by_role("link", name="Continue with Test ID")
    expect(continue_with).to_be_visible()
    check_a11y(page, "the sign-in page with providers")

    # At the provider's own page (another origin), the person signs in.
    continue_with.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Demo ID")
    assert not page.url.startswith(live_server.url)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Name (optional)").fill("Sam Social")
    page.get_by_role("button", name="Sign in and continue").click()

    # Back on the portal, signed in to a brand-new account.
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.get_by_role("status").or_(page.get_by_role("alert")).first).to_contain_text(
        "Your account has been created."
    )
    expect(main_nav.get_by_role("link", name="My account")).to_be_visible()
    check_a11y(page, "the account overview after a social sign-in")

    # The settings list the provider, which cannot be unlinked: it is the only way in.
    page.get_by_role("navigation", name="Account sections").get_by_role(
        "link", name="Sign-in methods"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in methods")
    expect(page.get_by_role("heading", name="Test ID")).to_be_visible()
    expect(page.get_by_text(email)).to_be_visible()
    expect(page.get_by_text("This is your only way to sign in")).to_be_visible()
    check_a11y(page, "the sign-in methods page")

    # Link a second provider from the settings, then the first can go.
    page.get_by_role("link", name="Link Second ID").click()
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Sign in and continue").click()
    expect(page).to_have_url(re.compile(r"/account/sign-in-methods$"))
    expect(page.get_by_text("Second ID is now linked to your account.")).to_be_visible()
    page.get_by_role("button", name="Unlink Test ID").click()
    expect(page.get_by_text("Test ID is no longer linked to your account.")).to_be_visible()
    check_a11y(page, "the sign-in methods page after unlinking")


def test_cancelling_at_the_provider_shows_a_way_back(page: Page, live_server, check_a11y):
    page.goto("/login")
    page.get_by_role("link", name="Continue with Test ID").click()
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in cancelled")
    check_a11y(page, "the cancelled sign-in page")
    page.get_by_role("link", name="Back to sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
