"""A consumer picks interests and shares a plan in a real browser, sees which brands may
read them, withdraws the plan; axe-core checks each page and the form with errors."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import sign_in_as

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("catalogue")]


def test_interests_and_a_plan_from_start_to_withdrawal(page: Page, make_account, check_a11y):
    email = make_account()
    sign_in_as(page, email)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Interests").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your interests")
    check_a11y(page, "the interests page")
    page.get_by_label("Electric vehicles").check()
    page.get_by_label("Maintenance offers").check()
    page.get_by_role("button", name="Save my interests for Aurore Automobiles").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "Your interests for Aurore Automobiles are saved"
    )
    expect(page.get_by_label("Electric vehicles")).to_be_checked()
    expect(page.get_by_label("New models")).not_to_be_checked()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My plans").click()
    expect(page.get_by_text("You have not stated any plans yet.")).to_be_visible()
    check_a11y(page, "the plans page, empty")

    page.get_by_label("What do you plan?").select_option(label="Replace my vehicle")
    page.get_by_label("Lowest budget, in euros (optional)").fill("30000")
    page.get_by_label("Highest budget, in euros (optional)").fill("20000")
    page.get_by_role("button", name="Share this plan").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check_a11y(page, "the plans form with errors")
    expect(page.get_by_label("Lowest budget, in euros (optional)")).to_have_value("30000")

    page.get_by_label("Lowest budget, in euros (optional)").fill("15000")
    page.get_by_label("In your own words (optional)").fill("a red hatchback for the city")
    page.get_by_label("Aurore Automobiles").check()
    page.get_by_role("button", name="Share this plan").click()
    expect(page.get_by_role("status").first).to_contain_text("Your plan is saved")
    expect(page.get_by_text("a red hatchback for the city", exact=True)).to_be_visible()
    check_a11y(page, "the plans page with a plan")

    page.get_by_role("button", name="Withdraw this plan").click()
    expect(page.get_by_role("heading", name="Past plans")).to_be_visible()
    check_a11y(page, "the plans page with a past plan")
