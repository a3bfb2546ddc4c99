"""A consumer manages consents in a real browser: gives two, withdraws one, downloads a
signed receipt and checks it with the live server's JWKS, reads the history, and sees a
Global Privacy Control signal withdraw the sharing consent. axe-core checks each page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from playwright.sync_api import Page, expect

from tests.e2e.conftest import sign_in_as

pytestmark = pytest.mark.e2e

SMS = "Offers by text message"
SHARING = "Sharing with partner companies"
GPC_MESSAGE = (
    "Your browser sent a Global Privacy Control signal, so we withdrew your consent to "
    f"sharing your data with third parties (Maison Berlingot: {SHARING})."
)


def named(verb: str, title: str) -> re.Pattern[str]:
    """A button's accessible name: the visible verb, then the purpose (visually hidden)."""
    return re.compile(rf"^{re.escape(verb)}\s*:\s*{re.escape(title)}$")


def button(page: Page, verb: str, title: str):
    return page.get_by_role("button", name=named(verb, title))


def expect_button(page: Page, title: str, verb: str) -> None:
    """The purpose's one button now offers ``verb``."""
    expect(purpose_card(page, title).get_by_role("button")).to_have_accessible_name(
        named(verb, title)
    )


def flashes(page: Page):
    return page.locator(".flashes")


def purpose_card(page: Page, title: str):
    return page.get_by_role("region", name=title)


def history_actions(page: Page) -> list[str]:
    rows = page.locator("tr.history__row")
    return [rows.nth(i).get_attribute("data-action") or "" for i in range(rows.count())]


def test_give_withdraw_download_a_receipt_and_see_the_history(
    page: Page, live_server, catalogue, make_account, check_a11y, screenshot, tmp_path: Path
):
    email = make_account()
    sign_in_as(page, email)

    # The overview lists the brands; the consumer opens Maison Berlingot.
    page.goto("/consents/")
    expect(page.get_by_role("heading", level=1)).to_have_text("My consents")
    check_a11y(page, "the consents overview")
    page.get_by_role("link", name="Manage consents — Maison Berlingot").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Consents for Maison Berlingot")
    check_a11y(page, "a brand's consents page")

    # They give two consents, one click each.
    button(page, "Give consent", SMS).click()
    expect(flashes(page)).to_contain_text(f"Consent given: “{SMS}”.")
    expect(purpose_card(page, SMS)).to_contain_text("Given")
    button(page, "Give consent", SHARING).click()
    expect(flashes(page)).to_contain_text(f"Consent given: “{SHARING}”.")
    check_a11y(page, "a brand's consents page after giving consent")
    screenshot(page, "consent-brand-page")

    # Withdrawing is as easy: same page, one click.
    button(page, "Withdraw consent", SMS).click()
    expect(flashes(page)).to_contain_text(f"Consent withdrawn: “{SMS}”.")
    expect_button(page, SMS, "Give consent")
    expect_button(page, SHARING, "Withdraw consent")

    # The history shows the three changes, newest first.
    page.goto("/consents/")
    page.get_by_role("link", name=re.compile("history of your consents")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("History of my consents")
    expect(page.locator("tr.history__row")).to_have_count(3)
    assert history_actions(page) == ["withdrawn", "granted", "granted"]
    rows = page.locator("tr.history__row")
    expect(rows.nth(0)).to_contain_text(SMS)
    expect(rows.nth(1)).to_contain_text(SHARING)
    expect(rows.nth(2)).to_contain_text(SMS)
    check_a11y(page, "the consent history")
    screenshot(page, "consent-history")

    # They download the newest receipt and check it with the public key alone.
    with page.expect_download() as download_info:
        rows.nth(0).get_by_role("link", name=re.compile("Download receipt")).click()
    download = download_info.value
    assert download.suggested_filename.startswith("consent-receipt-")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    token = saved.read_text().strip()
    jwks = page.request.get("/.well-known/jwks.json")
    assert jwks.ok
    keys = KeySet.import_key_set(jwks.json())
    payload = json.loads(jws.deserialize_compact(token, keys, algorithms=["Ed25519"]).payload)
    assert payload["consentStatus"] == "withdrawn"
    assert payload["services"][0]["service"] == "Maison Berlingot"
    assert payload["services"][0]["purposes"][0]["purpose"] == SMS
    assert payload["iss"] == live_server.url
    assert email not in token
    assert saved.name == f"consent-receipt-{payload['consentReceiptID']}.jwt"


def test_the_gpc_signal_withdraws_the_sharing_consent_and_says_so(
    page: Page, live_server, catalogue, make_account, check_a11y
):
    email = make_account()
    sign_in_as(page, email)
    page.goto("/consents/maison-berlingot")
    button(page, "Give consent", SHARING).click()
    expect(flashes(page)).to_contain_text(f"Consent given: “{SHARING}”.")
    button(page, "Give consent", SMS).click()
    expect(flashes(page)).to_contain_text(f"Consent given: “{SMS}”.")

    # The browser now sends Global Privacy Control with every request.
    page.set_extra_http_headers({"Sec-GPC": "1"})
    page.goto("/consents/")
    expect(flashes(page)).to_contain_text(GPC_MESSAGE)
    expect(page.get_by_text("Your browser sends a Global Privacy Control signal")).to_be_visible()
    check_a11y(page, "the consents overview with the GPC message")

    page.goto("/consents/maison-berlingot")
    expect(flashes(page)).to_have_count(0)  # said once
    expect_button(page, SHARING, "Give consent")
    expect_button(page, SMS, "Withdraw consent")

    page.goto("/consents/history")
    assert history_actions(page) == ["withdrawn", "granted", "granted"]
    newest = page.locator("tr.history__row").first
    expect(newest).to_contain_text(SHARING)
    expect(newest).to_contain_text("Global Privacy Control signal")
    check_a11y(page, "the consent history after a GPC signal")

    # Giving it again while the signal is on is an explicit choice, and it stays.
    page.goto("/consents/maison-berlingot")
    button(page, "Give consent", SHARING).click()
    expect(flashes(page)).to_contain_text(f"Consent given: “{SHARING}”.")
    page.goto("/consents/")
    expect(flashes(page)).to_have_count(0)
    page.goto("/consents/history")
    assert history_actions(page)[:2] == ["granted", "withdrawn"]
