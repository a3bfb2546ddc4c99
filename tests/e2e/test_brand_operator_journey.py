"""A brand operator in the brand space: signs in with a code, creates an API client and
gets a token with it over HTTP, rotates the secret (both work during the grace period),
adds a webhook endpoint, sends it a test ping and sees the answer in the log. axe checks
every page, in English and in French."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pyotp
import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD
from tests.e2e.conftest import LiveServer, unique_email
from tests.webhooks.conftest import Receiver
from vrm_portal.accounts import service
from vrm_portal.accounts.models import StaffRole
from vrm_portal.brands import feed
from vrm_portal.brands.models import Brand, ChangeKind
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.webhooks.signing import verify

pytestmark = pytest.mark.e2e

#: A brand of its own: the other journeys give the demo brands clients and webhooks, and
#: this one starts from the empty state.
BRAND = "e2e-operated-brand"
BRAND_NAME = "Operated Brand"
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.down()


def make_operator(live_server: LiveServer) -> str:
    email = unique_email("brand-operator")
    with live_server.app.app_context(), Session(db.engine) as session:
        brand = brand_by_slug(session, BRAND)
        if brand is None:
            brand = Brand(
                slug=BRAND,
                name=BRAND_NAME,
                controller_name="Operated Brand SAS",
                controller_email="privacy@operated.example",
                policy_url="https://operated.example/privacy",
            )
            session.add(brand)
            session.flush()
        registration = service.register_account(
            session, email, PASSWORD, locale="en", verification_ttl=timedelta(hours=1)
        )
        registration.account.email_verified_at = utcnow()
        registration.account.staff_role = StaffRole.BRAND_OPERATOR.value
        registration.account.staff_brand_id = brand.id
        session.commit()
    return email


def add_feed_entry(live_server: LiveServer) -> None:
    with live_server.app.app_context(), Session(db.engine) as session:
        brand = brand_by_slug(session, BRAND)
        assert brand is not None
        feed.append_change(
            session,
            brand.id,
            ChangeKind.CONSENT_GRANTED,
            str(uuid.uuid4()),
            utcnow(),
            {"purpose": "email-offers", "version": 1, "method": "portal", "expires_at": None},
        )
        session.commit()


def token_status(base: str, client_id: str, secret: str) -> int:
    answer = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    return answer.status_code


def shown_secret(page: Page) -> str:
    return page.locator("#new-secret").inner_text().strip()


def test_a_brand_operator_manages_clients_and_webhooks(
    page: Page, live_server: LiveServer, catalogue, receiver, check_a11y, screenshot
):
    email = make_operator(live_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    # Sign in: password, then enrol an authenticator app like any staff member.
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/two-factor/setup$"))
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().replace(" ", ""))
    page.get_by_label("6-digit code from your authenticator app").fill(totp.now())
    page.get_by_role("button", name="Turn on and sign in").click()
    expect(page.get_by_role("status").first).to_contain_text("Two-step verification is on")

    # The brand space opens on the operator's brand.
    page.goto("/brand-space/")
    expect(page).to_have_url(re.compile(rf"/brand-space/{BRAND}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(BRAND_NAME)
    check_a11y(page, "the brand overview")

    # Create an API client: the secret is shown once, with a copy button.
    page.get_by_role("navigation", name="Brand space sections").get_by_role(
        "link", name="API clients"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("API clients")
    expect(page.get_by_text("This brand has no API client yet.")).to_be_visible()
    check_a11y(page, "the API clients page")
    page.get_by_role("button", name="Create the client").click()
    expect(page.get_by_role("alert")).to_contain_text("Give the client a name.")
    check_a11y(page, "the API clients page with errors")
    page.get_by_label("Name").fill("CRM")
    page.get_by_label("consumers:read").check()
    page.get_by_label("changes:read").check()
    page.get_by_role("button", name="Create the client").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Client CRM created")
    first_secret = shown_secret(page)
    client_id = page.locator("dd code").first.inner_text().strip()
    copy = page.get_by_role("button", name="Copy the secret")
    expect(copy).to_be_visible()
    copy.click()
    expect(page.locator(".copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == first_secret
    check_a11y(page, "the new client's secret page")
    screenshot(page, "brand-space-client-secret")

    # The brand gets a token with it, over HTTP, and reads its feed twice.
    assert token_status(live_server.url, client_id, first_secret) == 200
    add_feed_entry(live_server)
    token = requests.post(
        f"{live_server.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, first_secret),
        timeout=10,
    ).json()["access_token"]
    for _ in range(2):
        read = requests.get(
            f"{live_server.url}/api/v1/changes",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert read.status_code == 200

    # Rotate: both secrets work during the grace period.
    page.get_by_role("link", name="I have stored the secret: go to the client").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("CRM")
    # The reads are recorded off the request path: they show within a moment.
    for _ in range(20):
        if page.get_by_text("Read requests per day (UTC): 2 in all.").count():
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(page.get_by_text("Read requests per day (UTC): 2 in all.")).to_be_visible()
    chart = page.get_by_role("img", name=re.compile("Bar chart of read requests per day"))
    expect(chart).to_be_visible()
    assert page.evaluate("document.querySelector('.reads-chart img').naturalWidth") > 0
    page.get_by_text("The figures, day by day").click()
    expect(page.get_by_role("table", name="Reads per day (UTC), oldest first")).to_be_visible()
    assert first_secret not in page.content()
    check_a11y(page, "the client page")
    screenshot(page, "brand-space-client")
    page.get_by_role("button", name="Rotate the secret").click()
    expect(page.get_by_role("status").first).to_contain_text("The old secret keeps working")
    second_secret = shown_secret(page)
    assert second_secret != first_secret
    check_a11y(page, "the rotated secret page")
    assert token_status(live_server.url, client_id, first_secret) == 200
    assert token_status(live_server.url, client_id, second_secret) == 200
    page.get_by_role("link", name="I have stored the secret: go to the client").click()
    expect(page.get_by_text("The previous secret also works until")).to_be_visible()
    assert second_secret not in page.content()

    # Add a webhook endpoint (plain http to this machine: a testing portal allows it).
    page.get_by_role("navigation", name="Brand space sections").get_by_role(
        "link", name="Webhooks"
    ).click()
    check_a11y(page, "the webhooks page")
    page.get_by_label("Address (URL)").fill("ftp://hooks.example/x")
    page.get_by_role("button", name="Add the endpoint").click()
    expect(page.get_by_role("alert")).to_contain_text("The address must start with https://")
    check_a11y(page, "the webhooks page with an error")
    page.get_by_label("Address (URL)").fill(receiver.url())
    page.get_by_role("button", name="Add the endpoint").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("added")
    signing_secret = shown_secret(page)
    check_a11y(page, "the new endpoint's secret page")
    page.get_by_role("link", name="I have stored the secret: go to the endpoint").click()
    endpoint_path = page.url.removeprefix(live_server.url)

    # Send a test ping: the answer is shown, and the ping is in the log.
    page.get_by_role("button", name="Send a test ping").click()
    expect(page.get_by_role("status").first).to_contain_text("Ping answered: HTTP 204")
    pings = page.get_by_role("table", name="The last test pings, newest first")
    expect(pings.get_by_role("cell", name=re.compile("HTTP 204"))).to_be_visible()
    (request,) = receiver.received
    assert verify(signing_secret, request.headers, request.body).startswith("ping-")
    assert signing_secret not in page.content()
    check_a11y(page, "the endpoint page with its ping log")
    screenshot(page, "brand-space-endpoint")

    # The same pages in French.
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    check_a11y(page, "the endpoint page, in French")
    for path in (
        f"/brand-space/{BRAND}/",
        f"/brand-space/{BRAND}/clients",
        f"/brand-space/{BRAND}/clients/{client_id}",
        f"/brand-space/{BRAND}/webhooks",
    ):
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        check_a11y(page, f"{path}, in French")

    # On a phone (320 px wide), no page scrolls sideways.
    page.set_viewport_size({"width": 320, "height": 800})
    for path in (
        f"/brand-space/{BRAND}/",
        f"/brand-space/{BRAND}/clients",
        f"/brand-space/{BRAND}/clients/{client_id}",
        f"/brand-space/{BRAND}/webhooks",
        endpoint_path,
    ):
        page.goto(path)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), f"{path} scrolls sideways at 320 px"
