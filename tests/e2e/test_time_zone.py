"""The browser's time zone, detected by static/time-zone.js, is the one the pages use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from tests.e2e.conftest import LiveServer, sign_in_as

pytestmark = pytest.mark.e2e


def _is_report(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/time-zone")


def _page(browser: Browser, live_server: LiveServer, **options: object) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, locale="en-GB", **options)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def new_york(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A browser whose system clock is set to New York."""
    yield from _page(browser, live_server, timezone_id="America/New_York")


@pytest.fixture
def no_script(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    yield from _page(browser, live_server, timezone_id="Asia/Tokyo", java_script_enabled=False)


def test_the_zone_the_browser_reports_is_used_and_kept_on_the_account(
    new_york: Page, make_account, check_a11y
):
    page = new_york
    email = make_account()

    # A visitor: the script reports the zone once, and the next pages use it.
    with page.expect_response(_is_report) as report:
        page.goto("/login")
    assert report.value.status == 204

    # Signed in, the account has no zone yet: the first page reports it for the account.
    with page.expect_response(_is_report) as adopted:
        sign_in_as(page, email)
    assert adopted.value.status == 204

    page.goto("/account/")
    details = page.get_by_role("region", name="Your details")
    expect(details).to_contain_text("America/New York")
    expect(page.get_by_role("region", name="Recent security activity")).to_contain_text(
        "(America/New York)"
    )
    page.goto("/account/time-zone")
    expect(page.get_by_label("Time zone", exact=True)).to_have_value("America/New_York")
    expect(page.locator("#time-zone-now")).to_contain_text("Your time zone is America/New York.")
    check_a11y(page, "the time zone page")

    # The consumer chooses another zone: it is kept, and no browser report replaces it.
    page.get_by_label("Time zone", exact=True).select_option("Europe/Paris")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "Saved: times are now shown in Europe/Paris."
    )
    expect(page.locator("script[src$='time-zone.js']")).to_have_count(0)
    page.goto("/account/activity")
    expect(page.get_by_role("main")).to_contain_text("(Europe/Paris)")


def test_without_javascript_times_are_in_utc_and_the_page_says_so(no_script: Page, make_account):
    page = no_script
    sign_in_as(page, make_account())

    page.goto("/account/")
    expect(page.get_by_role("region", name="Your details")).to_contain_text(
        "Not set: times are shown in UTC"
    )
    expect(page.get_by_role("region", name="Recent security activity")).to_contain_text("(UTC)")
    page.goto("/account/time-zone")
    expect(page.locator("#time-zone-now")).to_contain_text("times are shown in UTC")
