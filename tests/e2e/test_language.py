"""The language switcher in the header."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_language_switcher_turns_the_page_to_french_and_back(page: Page, live_server, check_a11y):
    html = page.locator("html")
    # Each language is offered under its own name, whatever the page's language.
    french = page.get_by_role("button", name="Français")
    english = page.get_by_role("button", name="English")

    page.goto("/help")
    expect(html).to_have_attribute("lang", "en")
    expect(english).to_have_attribute("aria-current", "true")

    french.click()
    expect(html).to_have_attribute("lang", "fr")
    expect(page).to_have_url(f"{live_server.url}/help")
    expect(french).to_have_attribute("aria-current", "true")
    expect(english).not_to_have_attribute("aria-current", "true")
    check_a11y(page, "the help page in French")

    # The choice sticks to the browser session: the next page is French too.
    page.goto("/")
    expect(html).to_have_attribute("lang", "fr")

    english.click()
    expect(html).to_have_attribute("lang", "en")
