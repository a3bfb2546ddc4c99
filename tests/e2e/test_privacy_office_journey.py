"""A privacy officer's day: first sign-in with TOTP, a look-up by email with a reason, one
event's proof, an export, a full verification watched to the end, and an erasure worked
from the queue; axe on every page, in English and in French."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD
from tests.e2e.conftest import LiveServer, sign_in_as, unique_email
from tests.e2e.test_phone_layout import NARROWEST, PHONE, visit
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change
from vrm_portal.consent.signing import current_notary
from vrm_portal.extensions import db
from vrm_portal.requests import service as requests_service

pytestmark = pytest.mark.e2e

CONSOLE_PAGES = (
    "/office/",
    "/office/log",
    "/office/statistics",
    "/office/verification",
    "/office/requests",
    "/office/requests/new",
)


def _consumer_with_history(live_server: LiveServer, email: str) -> str:
    """A consumer with three consent events; returns their subject key."""
    with live_server.app.app_context(), Session(db.engine) as session:
        account = session.scalars(select(Account).where(Account.email == email)).one()
        notary = current_notary()
        sms = service.find_purpose(session, "maison-berlingot", "sms-offers")
        analytics = service.find_purpose(session, "aurore-automobiles", "analytics")
        change = Change(CollectionMethod.PORTAL, "en", utcnow())
        service.grant(session, notary, account, sms, shown_version=1, change=change)
        service.grant(session, notary, account, analytics, shown_version=1, change=change)
        service.withdraw(session, notary, account, sms, change=change)
        session.commit()
        return account.subject_key


def _failed_erasure(live_server: LiveServer, email: str) -> str:
    """An overdue erasure whose first attempt failed; returns its reference."""
    with live_server.app.app_context(), Session(db.engine) as session:
        account = session.scalars(select(Account).where(Account.email == email)).one()
        # Received 40 days ago (past its one-month deadline); its run is due tomorrow, so
        # the worker's hourly pass leaves it to the "Retry now" below.
        request = requests_service.schedule_erasure(
            session, account, utcnow() - timedelta(days=40), grace=timedelta(days=41)
        )
        request.detail = {"failed_attempts": 1, "last_error": "OperationalError"}
        session.commit()
        return request.reference


def test_a_privacy_officers_journey(
    page: Page, live_server, make_account, catalogue, check_a11y, screenshot
):
    dpo = make_account(unique_email("dpo"), role=StaffRole.DPO)
    consumer = make_account(unique_email("consumer"))
    subject = _consumer_with_history(live_server, consumer)
    leaving = make_account(unique_email("leaving"))
    reference = _failed_erasure(live_server, leaving)

    # First sign-in: enrol TOTP, then land on the console.
    page.goto("/login")
    page.get_by_label("Email address").fill(dpo)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/two-factor/setup$"))
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("6-digit code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on and sign in").click()
    expect(page).to_have_url(re.compile(r"/office/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Privacy office")
    expect(page.get_by_text(re.compile(r"\d+ open requests? (is|are) past"))).to_be_visible()
    check_a11y(page, "the privacy office front page")
    screenshot(page, "office-front")

    # Consumer pages are not for staff.
    page.goto("/consents/")
    expect(page).to_have_url(re.compile(r"/office/$"))

    # Search by email: the reason comes first.
    nav = page.get_by_role("navigation", name="Privacy office sections")
    nav.get_by_role("link", name="Consent log").click()
    check_a11y(page, "the consent log search")
    page.get_by_label("Consumer's email address").fill(consumer)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("alert")).to_contain_text("Give the reason for this look-up.")
    check_a11y(page, "the search with an error")
    page.get_by_label("Reason for the look-up").fill("Ticket DPO-1234")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="3 events found")).to_be_visible()
    expect(page.get_by_text(subject).first).to_be_visible()
    check_a11y(page, "the search results")
    screenshot(page, "office-search")

    # Export the results.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export as CSV").click()
    exported = download_info.value.path().read_text()
    assert exported.count(subject) == 3

    # One event's proof.
    page.get_by_role("table").get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Canonical body (what is hashed)")).to_be_visible()
    expect(page.get_by_text("Signature valid")).to_be_visible()
    expect(page.get_by_text("Verifies", exact=True)).to_be_visible()
    check_a11y(page, "an event's proof")

    # A full verification, watched to the end (the worker runs it; the page polls).
    page.get_by_role("navigation", name="Privacy office sections").get_by_role(
        "link", name="Ledger verification"
    ).click()
    check_a11y(page, "the verification page")
    page.get_by_role("button", name="Verify the whole ledger now").click()
    expect(page).to_have_url(re.compile(r"/office/verification/\d+$"))
    check_a11y(page, "a verification run")
    expect(page.get_by_text("The chain is intact")).to_be_visible(timeout=30_000)
    expect(page.locator("#run-bar")).to_have_attribute("value", re.compile(r"[1-9]\d*"))
    page.reload()
    expect(page.get_by_text("The chain is intact")).to_be_visible()
    screenshot(page, "office-verification")

    # The queue: the failed erasure, retried now.
    page.get_by_role("navigation", name="Privacy office sections").get_by_role(
        "link", name="Data requests"
    ).click()
    check_a11y(page, "the data-request queue")
    row = page.get_by_role("row").filter(has_text=reference[:8])
    expect(row).to_contain_text("Overdue")
    expect(row).to_contain_text("OperationalError")
    row.get_by_role("button", name=re.compile("Retry now")).click()
    expect(page.get_by_role("status").first).to_contain_text("handed to the worker again")
    check_a11y(page, "a data request")
    # The worker erases the account; the request's page shows it once reloaded.
    for _ in range(60):
        if "Completed" in page.locator(".office-facts").inner_text():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator(".office-facts")).to_contain_text("Completed")

    page.get_by_role("navigation", name="Privacy office sections").get_by_role(
        "link", name="Statistics"
    ).click()
    expect(page.get_by_role("img", name=re.compile("Bar chart"))).to_have_count(2)
    check_a11y(page, "the statistics")
    page.get_by_role("navigation", name="Privacy office sections").get_by_role(
        "link", name="Data requests"
    ).click()
    page.get_by_role("link", name="Record a request received by post or email").first.click()
    check_a11y(page, "recording a request")

    # Every console page fits a phone (no sideways scrolling) and passes axe there too.
    for viewport in (PHONE, NARROWEST):
        page.set_viewport_size(viewport)
        for path in CONSOLE_PAGES:
            visit(page, check_a11y, path, f"{viewport['width']} px:")
    page.set_viewport_size({"width": 1280, "height": 800})

    # The same pages in French.
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    for path in CONSOLE_PAGES:
        visit(page, check_a11y, path, "in French:")

    # The consumer sees the look-up.
    page.context.clear_cookies()
    sign_in_as(page, consumer)
    page.goto("/my-data/access")
    expect(page.get_by_text("reason given: Ticket DPO-1234").first).to_be_visible()
    check_a11y(page, "who read my data, with the privacy office's look-up")
