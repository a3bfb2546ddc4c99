"""A staff member's first sign-in: enrol an authenticator app, then a code at each sign-in."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import unique_email
from vrm_portal.accounts.models import StaffRole

pytestmark = pytest.mark.e2e


def sign_in_with_password(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_staff_enrol_an_authenticator_then_give_a_code_at_each_sign_in(
    page: Page, make_account, check_a11y, screenshot
):
    email = make_account(unique_email("dpo"), role=StaffRole.DPO)

    # The password alone leads to the set-up page, not into the account.
    sign_in_with_password(page, email)
    expect(page).to_have_url(re.compile(r"/login/two-factor/setup$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-step verification")
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    check_a11y(page, "the two-step verification set-up page")
    screenshot(page, "two-factor-setup")

    # The authenticator app (pyotp here) reads the key shown on the page.
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    app = pyotp.TOTP(secret)
    page.get_by_label("6-digit code from your authenticator app").fill(app.now())
    page.get_by_role("button", name="Turn on and sign in").click()
    # Staff land on their console (a DPO: the privacy office), not on consumer pages.
    expect(page).to_have_url(re.compile(r"/office/$"))
    expect(page.get_by_role("status").first).to_contain_text("Two-step verification is on")

    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()

    # Next time: the code page; a wrong code is refused, the next code lets them in.
    sign_in_with_password(page, email)
    expect(page).to_have_url(re.compile(r"/login/two-factor$"))
    check_a11y(page, "the two-step verification code page")
    page.get_by_label("6-digit code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("This code is not right")
    check_a11y(page, "the code page with an error")
    page.get_by_label("6-digit code from your authenticator app").fill(app.at(time.time() + 30))
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/office/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Privacy office")
    page.goto("/account/email")
    expect(page.get_by_text(email).first).to_be_visible()
