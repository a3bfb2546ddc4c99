"""Time zones: times are shown in the consumer's zone, and name it; the export keeps UTC.

The zone is the account's (a setting, or the first one its browser reported), else the one
this browser reported (``static/time-zone.js`` posts it to ``/time-zone``), else UTC.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel import dates
from sqlalchemy import select

from tests.accounts.flows import event_kinds, field_errors, reloaded, text
from tests.api.conftest import BrandApi, brand_api, consents, pairwise
from tests.conftest import PASSWORD, csrf_token, sign_in, submit
from tests.consent.conftest import catalogue, notary
from tests.mailbox import body
from vrm_portal.accounts.models import AccountEvent, EventKind
from vrm_portal.clock import utcnow
from vrm_portal.requests.service import schedule_erasure
from vrm_portal.time_zones import COOKIE_NAME, format_moment, select_time_zone

__all__ = ["brand_api", "catalogue", "consents", "notary", "pairwise"]

#: A purchase as a brand in Lyon posts it: 10:30 in Paris, 09:30 UTC.
PURCHASE_AT = "2026-11-20T10:30:00+01:00"
BRAND = "aurore-automobiles"


def _choose(client, zone):
    return submit(client, "/account/time-zone", {"time_zone": zone})


def _report(client, zone, form_page="/"):
    """What static/time-zone.js sends: the zone, with the page's CSRF token."""
    return client.post(
        "/time-zone", data={"csrf_token": csrf_token(client, form_page), "time_zone": zone}
    )


def _change_password(client):
    """Something that mails a time: the "password changed" notice says when."""
    new = "a fresh passphrase for alice"
    submit(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": new, "new_password_confirm": new},
    )


def _detection_script(page: str) -> str | None:
    match = re.search(r'<script src="/static/time-zone.js"[^>]*>', page)
    return match.group(0) if match else None


def _post_purchase(api: BrandApi, consumer_id: str) -> None:
    response = api.post(
        f"/api/v1/consumers/{consumer_id}/interactions",
        json={"type": "purchase", "occurred_at": PURCHASE_AT, "summary": "Bought winter tyres"},
    )
    assert response.status_code == 201, response.json


@pytest.fixture
def alice_with_a_purchase(client, make_account, brand_api, consents, pairwise):
    """Alice, signed in, to whom Aurore Automobiles posted a purchase at 10:30+01:00."""
    alice = make_account("alice@example.com")
    consents(alice, BRAND, grant=("analytics",))
    _post_purchase(brand_api(BRAND), pairwise(alice, BRAND))
    sign_in(client, "alice@example.com")
    return alice


# ---- the setting ---------------------------------------------------------------------


def test_the_setting_saves_a_zone_and_records_the_change(client, make_account, db_session):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    response = _choose(client, "Europe/Paris")

    assert response.status_code == 303
    assert reloaded(db_session, alice).time_zone == "Europe/Paris"
    assert event_kinds(db_session, alice)[-1] == "time_zone_changed"
    page = text(client.get(response.location))
    assert "Saved: times are now shown in Europe/Paris." in page
    assert "Your time zone is Europe/Paris." in page
    assert '<option selected value="Europe/Paris">Paris</option>' in page
    assert "Europe/Paris" in text(client.get("/account/"))

    again = _choose(client, "Europe/Paris")
    assert "nothing to save" in text(client.get(again.location))
    assert event_kinds(db_session, alice).count("time_zone_changed") == 1


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("Mars/Olympus_Mons", "This is not a time zone we know. Choose one from the list."),
        ("localtime", "This is not a time zone we know. Choose one from the list."),
        ("Europe/Paris" + "x" * 100, "This is not a time zone we know. Choose one from the list."),
        ("", "Choose a time zone from the list."),
    ],
)
def test_the_setting_refuses_an_unknown_zone(client, make_account, db_session, zone, message):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    response = _choose(client, zone)

    assert response.status_code == 422
    assert field_errors(response, "time_zone") == [message]
    assert reloaded(db_session, alice).time_zone is None
    assert "time_zone_changed" not in event_kinds(db_session, alice)


def test_the_list_groups_zones_by_region_and_keeps_an_older_name_a_browser_gave(
    client, make_account, db_session
):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    page = text(client.get("/account/time-zone"))
    assert '<optgroup label="Europe">' in page
    assert '<option value="America/New_York">New York</option>' in page
    assert '<option selected value="UTC">UTC</option>' in page
    assert "Asia/Calcutta" not in page  # an older name of Asia/Kolkata: not listed...

    alice.time_zone = "Asia/Calcutta"  # ...unless a browser reported it
    db_session.commit()
    page = text(client.get("/account/time-zone"))
    assert '<option selected value="Asia/Calcutta">Calcutta</option>' in page


# ---- times on the pages ----------------------------------------------------------------


def test_a_consumer_in_paris_sees_a_brand_posted_purchase_at_10_30_with_the_zone_named(
    client, alice_with_a_purchase, db_session
):
    alice_with_a_purchase.time_zone = "Europe/Paris"
    db_session.commit()

    for path in ("/my-data/", f"/consents/{BRAND}"):
        page = text(client.get(path))
        assert "Nov 20, 2026, 10:30:00\u202fAM (Europe/Paris)" in page, path
        assert "9:30:00\u202fAM" not in page, path
        # The machine-readable time stays UTC.
        assert '<time datetime="2026-11-20T09:30:00+00:00">' in page, path

    submit(client, "/locale", {"locale": "fr", "next": "/my-data/"}, form_page="/")
    assert "20 nov. 2026, 10:30:00 (Europe/Paris)" in text(client.get("/my-data/"))


def test_without_a_zone_times_are_in_utc_and_say_so(client, alice_with_a_purchase):
    page = text(client.get("/my-data/"))

    assert "Nov 20, 2026, 9:30:00\u202fAM (UTC)" in page
    page = text(client.get("/account/time-zone"))
    assert "this browser has not told us its own" in page
    assert "times are shown in UTC (Coordinated Universal Time)" in page


def test_a_date_alone_is_the_date_in_the_consumers_zone(client, make_account, db_session):
    alice = make_account("alice@example.com")
    # To be deleted at 23:30 UTC: already the next day in Tokyo.
    due = (utcnow() + timedelta(days=40)).replace(hour=23, minute=30)
    schedule_erasure(db_session, alice, due - timedelta(days=30), grace=timedelta(days=30))
    db_session.commit()
    sign_in(client, "alice@example.com")
    day, next_day = due.date(), due.date() + timedelta(days=1)
    banner = "Your account will be deleted on {:%B} {}, {}."

    assert banner.format(day, day.day, day.year) in text(client.get("/help"))
    _choose(client, "Asia/Tokyo")
    assert banner.format(next_day, next_day.day, next_day.year) in text(client.get("/help"))


def test_anonymous_pages_use_utc_until_the_browser_reports_a_zone(app, client):
    moment = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    with app.test_request_context("/"):
        assert select_time_zone() == "UTC"
        assert format_moment(moment) == "Nov 20, 2026, 9:30:00\u202fAM (UTC)"
    for forged in ("Mars/Olympus_Mons", "localtime", "../../etc/passwd"):
        with app.test_request_context("/", headers={"Cookie": f"{COOKIE_NAME}={forged}"}):
            assert select_time_zone() == "UTC", forged
    with app.test_request_context("/", headers={"Cookie": f"{COOKIE_NAME}=America/New_York"}):
        assert select_time_zone() == "America/New_York"
        assert (
            format_moment(moment, "long") == "November 20, 2026, 4:30:00\u202fAM (America/New York)"
        )

    script = _detection_script(text(client.get("/help")))
    assert script is not None
    assert 'data-known=""' in script
    assert 'data-endpoint="/time-zone"' in script


# ---- the browser's report ------------------------------------------------------------------


def test_a_visitors_browser_zone_is_kept_in_a_cookie_when_valid(client):
    assert _report(client, "Mars/Olympus_Mons").status_code == 422
    assert client.get_cookie(COOKIE_NAME) is None

    response = _report(client, "Europe/Paris")

    assert response.status_code == 204
    kept = client.get_cookie(COOKIE_NAME)
    assert kept.value == "Europe/Paris"
    assert kept.http_only
    # The script now has nothing to report unless the browser's zone changes.
    assert 'data-known="Europe/Paris"' in _detection_script(text(client.get("/help")))
    # The session cookie is left alone: the report can never undo a sign-in in flight.
    assert "vrm_session=" not in response.headers.get("Set-Cookie", "")


def test_a_report_without_the_csrf_token_is_refused(client):
    response = client.post("/time-zone", data={"time_zone": "Europe/Paris"})
    assert response.status_code == 400
    assert client.get_cookie(COOKIE_NAME) is None


def test_a_zone_reported_before_signing_in_is_used_after_and_becomes_the_accounts(
    client, alice_with_a_purchase, new_browser, db_session
):
    visitor = new_browser()
    _report(visitor, "Europe/Paris", form_page="/login")
    sign_in(visitor, "alice@example.com")
    page = text(visitor.get("/my-data/"))
    assert "10:30:00\u202fAM (Europe/Paris)" in page
    # The account has no zone yet: the script runs and reports it.
    assert 'data-known=""' in _detection_script(page)

    assert _report(visitor, "Europe/Paris", form_page="/my-data/").status_code == 204

    alice = reloaded(db_session, alice_with_a_purchase)
    assert alice.time_zone == "Europe/Paris"
    [event] = db_session.scalars(
        select(AccountEvent).where(
            AccountEvent.account_id == alice.id,
            AccountEvent.kind == EventKind.TIME_ZONE_CHANGED.value,
        )
    )
    assert event.detail == {"time_zone": "Europe/Paris", "source": "browser"}
    assert "Europe/Paris, as your browser reported it" in text(visitor.get("/my-data/"))
    # Every browser of the account now shows Paris times, and runs no detection.
    page = text(client.get("/my-data/"))
    assert "10:30:00\u202fAM (Europe/Paris)" in page
    assert _detection_script(page) is None


def test_a_browser_never_overrides_the_zone_the_consumer_chose(client, make_account, db_session):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    _choose(client, "Europe/Paris")

    assert _report(client, "America/New_York", form_page="/account/").status_code == 204

    assert reloaded(db_session, alice).time_zone == "Europe/Paris"
    assert event_kinds(db_session, alice).count("time_zone_changed") == 1


# ---- emails and the export -----------------------------------------------------------


def test_emails_show_times_in_the_recipients_zone(client, make_account, db_session, mailbox):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    _choose(client, "America/New_York")
    _change_password(client)

    text_of_mail = body(mailbox.wait_for("alice@example.com"))

    changed_at = reloaded(db_session, alice).password_changed_at
    local = changed_at.astimezone(ZoneInfo("America/New_York"))
    expected = dates.format_datetime(local, "medium", tzinfo=local.tzinfo, locale="en")
    assert f"changed on {expected} (America/New York)." in text_of_mail
    assert "UTC" not in text_of_mail


def test_an_email_to_an_account_without_a_zone_says_utc(client, alice_with_a_purchase, mailbox):
    _change_password(client)
    assert "(UTC)" in body(mailbox.wait_for("alice@example.com"))


def test_the_export_keeps_utc_and_says_so(client, alice_with_a_purchase, db_session):
    alice_with_a_purchase.time_zone = "Europe/Paris"
    db_session.commit()

    token = csrf_token(client, "/my-data/export/")
    html = client.post("/my-data/export/html", data={"csrf_token": token}).get_data(as_text=True)
    assert "All times are in UTC (Coordinated Universal Time)." in html
    assert re.search(r"as of \w+ \d+, \d{4}, \d+:\d\d:\d\d\s[AP]M \(UTC\)\.", html)
    assert "2026-11-20T09:30:00" in html
    assert "(Europe/Paris)" not in html

    document = json.loads(
        client.post("/my-data/export/json", data={"csrf_token": token}).get_data()
    )
    assert document["profile"]["time_zone"] == "Europe/Paris"
    assert document["interactions"][0]["occurred_at"].startswith("2026-11-20T09:30:00")
    assert document["generated_at"].endswith("Z")

    page = text(client.get("/my-data/export/"))
    assert "every time is in UTC (Coordinated Universal Time), whatever your time zone" in page
