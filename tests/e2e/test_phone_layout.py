"""Phones (WCAG 2.2 AA): every page at 390 x 844 (a phone) and 320 x 640 (the width of
1.4.10 Reflow: 1280 px zoomed to 400 %), in English and in French, passes axe and never
scrolls sideways; the main navigation folds into a "Menu" disclosure that works without
script and by keyboard.

One browser context per size and language, signed in as a consumer with what the demo
seeds (a consent history, interactions recorded by a brand, reads of their data): the
signed-out pages first, then the signed-in ones, then a scheduled deletion (its card and
banner), then the too-many-attempts page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD
from tests.e2e.conftest import LiveServer, unique_email
from vrm_portal.accounts import service as accounts
from vrm_portal.accounts.models import Account
from vrm_portal.brands import clients
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent.signing import current_notary
from vrm_portal.demo.history import DEMO_CHANGES, seed_demo_activity, seed_demo_history
from vrm_portal.extensions import db, limiter
from vrm_portal.requests import service as requests_service

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
NARROWEST = {"width": 320, "height": 640}
BROWSER_LOCALES = {"en": "en-GB", "fr": "fr-FR"}

#: The pages a visitor reaches before signing in (with the accessibility sweep's).
SIGNED_OUT_PAGES = (
    "/",
    "/help",
    "/login",
    "/register",
    "/password/forgot",
    "/password/reset/not-a-real-token",
    "/verify-email/not-a-real-token",
    "/api/v1/docs",
)
#: Every page of a signed-in consumer (the API reference is the same as signed out).
SIGNED_IN_PAGES = (
    "/",
    "/help",
    "/consents/",
    "/consents/history",
    "/consents/aurore-automobiles",
    "/interests",
    "/intents",
    "/my-data/",
    "/my-data/access",
    "/my-data/export/",
    "/account/",
    "/account/profile",
    "/account/password",
    "/account/email",
    "/account/attention-emails",
    "/account/time-zone",
    "/account/sessions",
    "/account/sign-in-methods",
    "/account/activity",
    "/account/delete/",
)

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
#: What sticks out on the right, to say why a page scrolls sideways.
WIDE_ELEMENTS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > window.innerWidth + 0.5) {
      out.push(`${el.tagName.toLowerCase()}.${el.className} (right edge ${Math.round(box.right)})`);
    }
  }
  return out.slice(0, 10);
}"""


def demo_like_consumer(live_server: LiveServer, locale: str) -> str:
    """A confirmed consumer in ``locale`` with the demo's history and activity."""
    email = unique_email(f"phone-{locale}")
    now = utcnow()
    with live_server.app.app_context(), Session(db.engine) as session:
        account = accounts.register_account(
            session, email, PASSWORD, locale=locale, verification_ttl=timedelta(hours=1)
        ).account
        account.email_verified_at = now
        session.flush()
        assert seed_demo_history(session, current_notary(), account) == len(DEMO_CHANGES)
        brand = brand_by_slug(session, "aurore-automobiles")
        assert brand is not None
        crm = clients.create_client(session, brand, list(clients.SCOPES), now, "Demo CRM")
        seed_demo_activity(session, account, crm.client)
        session.commit()
    return email


def schedule_deletion(live_server: LiveServer, email: str) -> None:
    with live_server.app.app_context(), Session(db.engine) as session:
        account = session.scalars(select(Account).where(Account.email == email)).one()
        requests_service.schedule_erasure(session, account, utcnow())
        session.commit()


@pytest.fixture
def phone_context(
    browser: Browser, live_server: LiveServer
) -> Iterator[Callable[[dict[str, int], str], Page]]:
    """``open_page(viewport, "fr")``: a fresh context of that size in that language."""
    contexts: list[BrowserContext] = []
    with live_server.app.app_context():
        limiter.reset()

    def open_page(viewport: dict[str, int], language: str) -> Page:
        context = browser.new_context(
            base_url=live_server.url,
            locale=BROWSER_LOCALES[language],
            viewport=viewport,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
    with live_server.app.app_context():
        limiter.reset()


def check_page(page: Page, check_a11y: Callable[[Page, str], None], what: str) -> None:
    """axe finds nothing serious, and the page does not scroll sideways."""
    check_a11y(page, what)
    if not page.evaluate(NO_SIDEWAYS_SCROLL):
        width = page.evaluate("document.documentElement.scrollWidth")
        pytest.fail(
            f"{what} ({page.url}) is {width} px wide in a {page.viewport_size} viewport; "
            f"too wide: {page.evaluate(WIDE_ELEMENTS)}"
        )


def visit(page: Page, check_a11y: Callable[[Page, str], None], path: str, what: str) -> None:
    response = page.goto(path)
    assert response is not None
    assert response.status in (200, 404), f"{path}: HTTP {response.status}"
    check_page(page, check_a11y, f"{what} {path}")


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Through the form, whatever the language (the fields by id)."""
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#password").press("Enter")


def is_sign_in_attempt(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/login")


def check_the_menu(
    page: Page, check_a11y: Callable[[Page, str], None] | None = None, what: str = ""
) -> None:
    """On a phone the links hide behind "Menu": reached by Tab, focus visible, Enter opens it.
    With ``check_a11y``, the page is checked with the menu open too."""
    menu = page.locator("details.nav-menu")
    button = menu.locator("summary")
    links = page.get_by_role("navigation").first.get_by_role("link")
    expect(button).to_be_visible()
    expect(menu).not_to_have_attribute("open", re.compile(".*"))
    expect(links.first).to_be_hidden()

    page.locator(".site-header__name").focus()
    page.keyboard.press("Tab")
    expect(button).to_be_focused()
    focus = button.evaluate(
        "el => { const s = getComputedStyle(el); return [el.matches(':focus-visible'), "
        "s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    assert focus[0], "the menu button does not match :focus-visible"
    assert focus[1] == "solid", f"no focus outline: {focus}"
    assert focus[2] >= 2, f"focus outline too thin: {focus}"
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    assert links.count() >= 3
    for index in range(links.count()):
        expect(links.nth(index)).to_be_visible()
        expect(links.nth(index)).to_be_in_viewport()
    if check_a11y is not None:
        check_page(page, check_a11y, f"{what}, the menu open")
    button.click()
    expect(links.first).to_be_hidden()


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("viewport", [PHONE, NARROWEST], ids=["390x844", "320x640"])
def test_every_page_fits_a_phone_and_passes_axe(
    phone_context, live_server: LiveServer, catalogue, check_a11y, viewport, language
):
    email = demo_like_consumer(live_server, language)
    page = phone_context(viewport, language)
    size = f"{viewport['width']} px, {language}"

    # Signed out.
    for path in SIGNED_OUT_PAGES:
        visit(page, check_a11y, path, f"signed out, {size}:")
        expect(page.locator("html")).to_have_attribute("lang", language)
    page.goto("/")
    check_the_menu(page)
    page.goto("/password/forgot")
    page.locator("#email").press("Enter")  # nothing typed in
    expect(page.get_by_role("alert")).to_be_visible()
    check_page(page, check_a11y, f"the forgotten password page with an error, {size}")
    response = page.goto("/no-such-page")
    assert response is not None
    assert response.status == 404
    check_page(page, check_a11y, f"the 404 page, {size}")

    # Signed in: every page.
    sign_in(page, email)
    expect(page).not_to_have_url(re.compile(r"/login"))
    for path in SIGNED_IN_PAGES:
        visit(page, check_a11y, path, f"signed in, {size}:")
        expect(page.locator("html")).to_have_attribute("lang", language)
    page.goto("/")
    check_the_menu(page, check_a11y, f"the home page signed in, {size}")

    # The history is all there, one card per change, each cell labelled.
    page.goto("/consents/history")
    rows = page.locator("tr.history__row")
    expect(rows).to_have_count(len(DEMO_CHANGES))
    for cell in rows.first.locator("td").all():
        assert cell.get_attribute("data-label")
        box = cell.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= viewport["width"]
    # A receipt in plain words, reached from its row of the history.
    page.locator("a.history__read").first.click()
    expect(page.locator(".receipt__verdict")).to_have_attribute("data-verdict", "valid")
    check_page(page, check_a11y, f"a receipt page, {size}")
    page.goto("/consents/aurore-automobiles")
    expect(page.locator("tr.recorded__row")).to_have_count(2)

    # A form with an error, and the printable copy of my data.
    page.goto("/account/email")
    page.locator("#new_email").fill(unique_email("moved"))
    page.locator("#current_password").fill("not my password at all")
    page.locator("#current_password").press("Enter")
    expect(page.get_by_role("alert")).to_be_visible()
    check_page(page, check_a11y, f"the change email page with an error, {size}")
    page.goto("/my-data/export/")
    page.locator("button[name=inline]").click()
    expect(page).to_have_url(re.compile(r"/my-data/export/html$"))
    check_page(page, check_a11y, f"the printable copy of my data, {size}")

    # A scheduled deletion: its card, and the banner on every page.
    schedule_deletion(live_server, email)
    visit(page, check_a11y, "/account/delete/", f"deletion scheduled, {size}:")
    expect(page.locator("section.card--warning")).to_be_visible()
    visit(page, check_a11y, "/my-data/", f"deletion scheduled, {size}:")
    expect(page.locator(".erasure-banner")).to_be_visible()

    # Sign out from the menu, then too many attempts.
    page.locator("details.nav-menu summary").click()
    page.locator(".site-nav form[action$='/logout'] button").click()
    expect(page.locator(".site-nav a[href$='/login']")).to_have_count(1)
    for _attempt in range(10):
        with page.expect_response(is_sign_in_attempt) as attempt:
            sign_in(page, email, PASSWORD + " wrong")
        if attempt.value.status == 429:
            break
    else:
        pytest.fail("ten wrong passwords in a row were never refused with 429")
    page.wait_for_load_state()
    check_page(page, check_a11y, f"the too many attempts page, {size}")


def test_on_a_wide_screen_the_links_show_without_the_menu_button(page: Page, check_a11y):
    page.goto("/help")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.locator("summary")).to_be_hidden()
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()
    expect(nav.get_by_role("link", name="Help")).to_be_visible()
    check_a11y(page, "the help page on a wide screen")
