"""A newcomer's whole journey, in a real browser, with axe-core checking every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import unique_email
from tests.mailbox import link_in

pytestmark = pytest.mark.e2e

FIRST_PASSWORD = "lantern meadow copper violin"
NEW_PASSWORD = "orbit pebble saffron harbour"
GENERIC_LOGIN_ERROR = "The email address or the password is not right."


def sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_register_confirm_sign_in_change_password_and_sign_in_again(
    page: Page, live_server, check_a11y, screenshot
):
    email = unique_email("newcomer")
    main_nav = page.get_by_role("navigation", name="Main")

    # A visitor lands on the home page and decides to create an account.
    page.goto("/")
    check_a11y(page, "the home page")
    page.get_by_role("main").get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an account")
    check_a11y(page, "the register page")

    # They mistype the confirmation: the form says so, and keeps what they typed.
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(FIRST_PASSWORD)
    page.get_by_label("Type the password again").fill(FIRST_PASSWORD + "!")
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_role("alert")).to_contain_text("The two passwords are not the same.")
    expect(page.get_by_label("Email address")).to_have_value(email)
    check_a11y(page, "the register page with errors")

    # They type it again, correctly, and are asked to check their email.
    page.get_by_label("Password", exact=True).fill(FIRST_PASSWORD)
    page.get_by_label("Type the password again").fill(FIRST_PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    expect(page).to_have_url(re.compile(r"/check-email"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    check_a11y(page, "the check-email page")

    # The confirmation email arrives at the SMTP server; they open its link.
    message = live_server.mailbox.wait_for(email)
    page.goto(link_in(message, "/verify-email/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    check_a11y(page, "the verify-email page")
    page.get_by_role("button", name="Confirm my email address").click()

    # Confirmed: they are signed in straight away, in a new session.
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.get_by_role("status").first).to_contain_text("Your email address is confirmed.")
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")

    # They go to My account, which shows their confirmed address.
    main_nav.get_by_role("link", name="My account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")
    details = page.get_by_role("region", name="Your details")
    expect(details).to_contain_text(email)
    expect(details).to_contain_text("Confirmed")
    check_a11y(page, "the account overview")
    screenshot(page, "account-overview")

    # They change their password.
    page.get_by_role("link", name="Change your password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your password")
    check_a11y(page, "the change-password page")
    page.get_by_label("Current password").fill(FIRST_PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change my password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")
    expect(page.get_by_role("status").first).to_contain_text("Your password has been changed.")

    # They look at where they are signed in, and at the security activity.
    sections = page.get_by_role("navigation", name="Account sections")
    sections.get_by_role("link", name="Sessions").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Where you are signed in")
    expect(page.get_by_text("This device")).to_be_visible()
    check_a11y(page, "the sessions page")
    sections.get_by_role("link", name="Security activity").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security activity")
    expect(page.get_by_role("main").get_by_text("Password changed")).to_be_visible()
    check_a11y(page, "the security activity page")

    # They sign out, and read the help.
    main_nav.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status").first).to_contain_text("You are signed out.")
    expect(main_nav.get_by_role("link", name="My account")).to_have_count(0)
    main_nav.get_by_role("link", name="Help").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Help")
    check_a11y(page, "the help page")

    # Their old password no longer works: the generic error, and no session.
    main_nav.get_by_role("link", name="Sign in").click()
    sign_in(page, email, FIRST_PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text(GENERIC_LOGIN_ERROR)
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(main_nav.get_by_role("link", name="My account")).to_have_count(0)
    check_a11y(page, "the login page with an error")

    # The new one does.
    sign_in(page, email, NEW_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")
    expect(page.get_by_role("region", name="Your details")).to_contain_text(email)
