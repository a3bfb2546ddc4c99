"""My data, end to end: a consumer gives a consent and a brand reads it; the consumer sees
it in the timeline and under "Who read my data", downloads the JSON export, checks it
against the published schema and against the pages, then deletes the account. The brand's
API then answers 404 for the old pairwise id and its change feed says ``consumer.erased``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in_as
from tests.e2e.test_brand_api_journey import BRAND, SMS, Brand, brand, pairwise_id

pytestmark = pytest.mark.e2e

__all__ = ["brand"]

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "export-v2.schema.json"


def test_see_download_and_leave(
    page: Page, live_server, make_account, brand: Brand, check_a11y, screenshot, tmp_path
):
    email = make_account()
    sign_in_as(page, email)
    page.goto(f"/consents/{BRAND}")
    page.get_by_role("region", name=SMS).get_by_role("button").click()
    expect(page.locator(".flashes")).to_contain_text(f"Consent given: “{SMS}”.")
    consumer_id = pairwise_id(live_server, email)
    assert brand.consumer(consumer_id)["consumer_id"] == consumer_id

    # The timeline has the consent; "Who read my data" has the brand's read.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My data").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My data")
    expect(page.locator(".timeline")).to_contain_text(SMS)
    check_a11y(page, "the My data timeline")
    screenshot(page, "my-data-timeline")
    page.goto("/my-data/access")
    reads = page.locator("table.access-log tbody tr")
    expect(reads).to_have_count(1)
    expect(reads.first).to_contain_text("Aurore Automobiles")
    expect(reads.first).to_contain_text("e2e CRM")
    read_count = reads.count()
    check_a11y(page, "who read my data")
    screenshot(page, "who-read-my-data")

    # Download the JSON and check it against the schema and the pages.
    page.goto("/my-data/export/")
    check_a11y(page, "the download page")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download JSON").click()
    download = download_info.value
    assert download.suggested_filename.startswith("vrm-portal-export-")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    exported = json.loads(saved.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        exported
    )
    assert exported["profile"]["email"] == email
    granted = [c for c in exported["consents"] if c["status"] == "granted"]
    assert [(c["brand"], c["purpose"]) for c in granted] == [(BRAND, "sms-offers")]
    [event] = exported["consent_history"]
    assert (event["action"], event["purpose"]) == ("granted", "sms-offers")
    assert event["receipt_jws"].count(".") == 2
    assert len(exported["access_log"]) == read_count
    assert exported["access_log"][0]["brand"] == BRAND

    page.goto("/consents/history")
    expect(page.locator("table.history tbody tr")).to_have_count(len(exported["consent_history"]))
    page.goto("/my-data/?type=requests")
    expect(page.locator(".timeline")).to_contain_text("JSON")

    # Leave, at once.
    page.goto("/account/delete/")
    check_a11y(page, "the delete account page")
    screenshot(page, "delete-account")
    page.get_by_label("Now", exact=True).check()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("I understand that my account and my data will be deleted for good").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account has been deleted")
    check_a11y(page, "the page after the deletion")
    screenshot(page, "account-deleted")

    # The brand can no longer read the consumer and is told to forget them.
    gone = brand.http.get(f"{brand.base}/api/v1/consumers/{consumer_id}", timeout=10)
    assert gone.status_code == 404
    assert gone.headers["Content-Type"].startswith("application/problem+json")
    changes = brand.http.get(f"{brand.base}/api/v1/changes?limit=1000", timeout=10).json()
    mine = [c for c in changes["items"] if c["consumer_id"] == consumer_id]
    assert [c["type"] for c in mine] == [
        "consent.granted",
        "consent.withdrawn",
        "consumer.erased",
    ]
    assert mine[1]["data"]["method"] == "erasure"

    # Signed out: personal pages ask to sign in again.
    page.goto("/my-data/")
    expect(page).to_have_url(f"{live_server.url}/login?next=%2Fmy-data%2F")


def test_schedule_the_deletion_then_keep_the_account(
    page: Page, live_server, make_account, check_a11y
):
    email = make_account()
    sign_in_as(page, email)
    page.goto("/account/")
    page.get_by_role("link", name="Delete your account").click()
    page.get_by_role("button", name="Delete my account").click()  # nothing filled in
    expect(page.get_by_role("alert")).to_contain_text("Enter your password")
    expect(page.get_by_role("alert")).to_contain_text("Tick the box")
    check_a11y(page, "the delete account page with errors")

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("I understand that my account and my data will be deleted for good").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator(".flashes")).to_contain_text("Your account will be deleted on")
    expect(
        page.get_by_role("heading", level=2, name="Your account will be deleted on")
    ).to_be_visible()
    check_a11y(page, "the delete account page while the deletion is scheduled")

    page.goto("/my-data/")
    expect(page.locator(".erasure-banner")).to_contain_text("Your account will be deleted on")
    page.locator(".erasure-banner").get_by_role("link").click()
    page.get_by_role("button", name="Keep my account").click()
    expect(page.locator(".flashes")).to_contain_text("Your account will not be deleted.")
    page.goto("/my-data/?type=requests")
    expect(page.locator(".timeline")).to_contain_text("Cancelled")
    expect(page.locator(".erasure-banner")).to_have_count(0)
