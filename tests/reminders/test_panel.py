"""The "What needs your attention" panel on the signed-in home page (My account)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
from babel.dates import format_date

from tests.conftest import PASSWORD, sign_in, submit
from tests.consent.conftest import new_text, purpose_of
from vrm_portal.accounts.models import StaffRole
from vrm_portal.clock import utcnow
from vrm_portal.consent.catalogue import publish_version

HOME = "/account/"
ITEM = re.compile(r'<li class="attention__item" data-reason="(\w+)">(.*?)</li>', re.S)


def panel(client) -> str | None:
    """The panel's HTML on the home page, or None when there is no panel."""
    page = client.get(HOME)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    if 'aria-labelledby="attention-title"' not in html:
        return None
    return html.split('aria-labelledby="attention-title"', 1)[1].split("</section>", 1)[0]


def items(client) -> list[tuple[str, str]]:
    found = panel(client)
    assert found is not None
    return [(reason, " ".join(text.split())) for reason, text in ITEM.findall(found)]


def test_renewal_and_expiring_consents_are_listed_and_others_are_not(
    client, alice, give, take_back, db_session
):
    # Expires in 15 days (text messages last 365 days).
    give(alice, "maison-berlingot", "sms-offers", days_ago=350)
    # Given to version 1, then the brand published version 2.
    give(alice, "aurore-automobiles", "personalised-offers")
    publish_version(
        db_session, purpose_of(db_session, "aurore-automobiles", "personalised-offers"), new_text()
    )
    db_session.commit()
    # Quiet: far from its expiry.
    give(alice, "maison-berlingot", "analytics")
    # Withdrawn, although it would have expired within days.
    give(alice, "domaine-des-coteaux", "sms-offers", days_ago=360)
    take_back(alice, "domaine-des-coteaux", "sms-offers")

    listed = items(client)

    assert [reason for reason, _text in listed] == ["renew", "expiring"]  # by brand name
    renew, expiring = (text for _reason, text in listed)
    assert "Aurore Automobiles" in renew
    assert "Offers chosen from your interests (v2)" in renew  # the new text's title
    assert "Needs your renewal" in renew
    assert 'href="/consents/aurore-automobiles#purpose-personalised-offers"' in renew
    expires = (utcnow() + timedelta(days=15)).date()
    assert "Maison Berlingot" in expiring
    assert "Offers by text message" in expiring
    assert f"Expires on {format_date(expires, 'long', locale='en')}." in expiring
    assert 'href="/consents/maison-berlingot#purpose-sms-offers"' in expiring
    whole = panel(client)
    assert "Domaine des Coteaux" not in whole
    assert "Measuring how you use our services" not in whole


def test_a_renewed_consent_leaves_the_panel(client, alice, give, db_session):
    give(alice, "maison-berlingot", "personalised-offers")
    purpose = purpose_of(db_session, "maison-berlingot", "personalised-offers")
    publish_version(db_session, purpose, new_text())
    db_session.commit()
    assert [reason for reason, _ in items(client)] == ["renew"]

    give(alice, "maison-berlingot", "personalised-offers")  # agrees to version 2

    assert items(client) == []
    assert "Nothing needs your attention right now." in panel(client)


def test_an_expired_consent_is_not_a_reminder(client, alice, give):
    give(alice, "maison-berlingot", "sms-offers", days_ago=366)  # past its expiry
    assert items(client) == []


def test_titles_follow_the_page_language(client, make_account, give):
    account = make_account("chloe@example.com", locale="fr")
    give(account, "maison-berlingot", "sms-offers", days_ago=350)
    sign_in(client, "chloe@example.com")
    [(_reason, text)] = items(client)
    assert "Offres par SMS" in text
    assert "Offers by text message" not in text


def test_the_panel_links_to_the_email_setting(client, alice):
    assert 'href="/account/attention-emails"' in panel(client)


def test_staff_accounts_get_no_panel(client, make_account, give):
    staff = make_account("dpo@example.com", role=StaffRole.DPO)
    give(staff, "maison-berlingot", "sms-offers", days_ago=350)
    response = submit(client, "/login", {"email": "dpo@example.com", "password": PASSWORD})
    assert response.location == "/login/two-factor/setup"
    setup = client.get("/login/two-factor/setup").get_data(as_text=True)
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', setup)
    assert match, setup
    code = pyotp.TOTP(match.group(1).replace(" ", "")).at(time.time())
    assert submit(client, "/login/two-factor/setup", {"code": code}).status_code == 302

    # Staff do not use the consumer pages: they are sent to their console, which has no
    # panel, and neither has the attention emails' setting.
    home = client.get(HOME)
    assert home.status_code == 302
    assert home.location == "/office/"
    console = client.get("/office/")
    assert console.status_code == 200
    assert 'aria-labelledby="attention-title"' not in console.get_data(as_text=True)
    setting = client.get("/account/attention-emails")
    assert setting.status_code == 302
    assert setting.location == "/office/"
