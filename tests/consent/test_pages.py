"""The consent pages, through the app's own forms: give, withdraw, bad input, history,
receipts, the Global Privacy Control signal, and the emailed double opt-in link."""

from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_token, sign_in, submit
from tests.consent.conftest import events_of, new_text, purpose_of
from tests.mailbox import link_in
from vrm_portal.consent import ledger, service
from vrm_portal.consent.catalogue import publish_version
from vrm_portal.consent.models import ConsentReceipt, ConsentState

BRAND_PAGE = "/consents/maison-berlingot"
SMS = "/consents/maison-berlingot/sms-offers"
NOT_UNDERSTOOD = "That choice could not be understood. Please use the buttons on this page."
RECEIPT_LINK = re.compile(r'href="/consents/receipts/([0-9a-f-]{36})\.jwt"')


def text_of(response) -> str:
    return response.get_data(as_text=True)


def follow(client, response):
    """The page a 303 after a POST leads to (with its flashed messages)."""
    assert response.status_code == 303, (response.status_code, text_of(response)[:500])
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    return page


def choose(client, path: str, choice: str, version: int | str = 1, **extra):
    return submit(
        client, path, {"choice": choice, "version": version, **extra}, form_page=BRAND_PAGE
    )


def purpose_form(page_html: str, key: str) -> dict[str, str]:
    """The hidden fields of the form of purpose ``key`` on a brand page."""
    section = page_html.split(f'id="purpose-{key}"', 1)[1].split("</section>", 1)[0]
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', section))
    action = re.search(r'action="([^"]+)"', section)
    assert action, section
    fields["action"] = action.group(1)
    return fields


def history_rows(client, query: str = "") -> list[tuple[str, str | None]]:
    page = client.get(f"/consents/history{query}")
    assert page.status_code == 200
    rows = re.findall(
        r'<tr class="history__row" data-action="(\w+)">(.*?)</tr>', text_of(page), re.S
    )
    return [(action, (RECEIPT_LINK.search(row) or [None, None])[1]) for action, row in rows]


# ---- sign-in and navigation -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/consents/",
        BRAND_PAGE,
        "/consents/history",
        "/consents/confirm/some-token",
        "/consents/receipts/00000000-0000-0000-0000-000000000000.jwt",
    ],
)
def test_signed_out_visitors_are_sent_to_sign_in(client, catalogue, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_the_overview_lists_every_brand_and_the_brand_page_every_purpose(client, alice):
    overview = text_of(client.get("/consents/"))
    for slug, name in (
        ("aurore-automobiles", "Aurore Automobiles"),
        ("maison-berlingot", "Maison Berlingot"),
        ("domaine-des-coteaux", "Domaine des Coteaux"),
    ):
        assert name in overview
        assert f'href="/consents/{slug}"' in overview
    page = text_of(client.get(BRAND_PAGE))
    for key in (
        "email-offers",
        "sms-offers",
        "personalised-offers",
        "partner-sharing",
        "analytics",
    ):
        form = purpose_form(page, key)
        assert form["action"] == f"/consents/maison-berlingot/{key}"
        assert form["choice"] == "grant"
        assert form["version"] == "1"
        assert form["csrf_token"]
    assert 'id="purpose-postal-offers"' not in page
    assert 'id="purpose-postal-offers"' in text_of(client.get("/consents/aurore-automobiles"))


def test_an_unknown_brand_is_not_found(client, alice, db_session):
    assert client.get("/consents/no-such-brand").status_code == 404
    token = csrf_token(client, BRAND_PAGE)
    response = client.post(
        "/consents/no-such-brand/sms-offers",
        data={"csrf_token": token, "choice": "grant", "version": "1"},
    )
    assert response.status_code == 404
    assert events_of(db_session) == []


# ---- giving and withdrawing -------------------------------------------------------------


def test_give_and_withdraw_through_the_page(client, alice, db_session):
    page = follow(client, choose(client, SMS, "grant"))
    html = text_of(page)
    assert "Consent given: “Offers by text message”. Your receipt is in your history." in html
    form = purpose_form(html, "sms-offers")
    assert form["choice"] == "withdraw"
    assert "Withdraw consent" in html.split('id="purpose-sms-offers"')[1].split("</section>")[0]
    assert [e.action for e in events_of(db_session, alice)] == ["granted"]

    # Withdrawing: same page, same one click.
    page = follow(client, submit(client, form["action"], {"choice": "withdraw", "version": "1"}))
    html = text_of(page)
    assert "Consent withdrawn: “Offers by text message”. Your receipt is in your history." in html
    assert purpose_form(html, "sms-offers")["choice"] == "grant"
    events = events_of(db_session, alice)
    assert [e.action for e in events] == ["granted", "withdrawn"]
    assert all(ledger.document_of(e)["method"] == "portal" for e in events)

    # The history shows both, newest first, each with its own receipt.
    rows = history_rows(client)
    assert [action for action, _ in rows] == ["withdrawn", "granted"]
    receipts = [receipt for _, receipt in rows]
    assert all(receipts)
    assert receipts[0] != receipts[1]
    for receipt_id, event in zip(receipts, reversed(events), strict=True):
        token = client.get(f"/consents/receipts/{receipt_id}.jwt").get_data(as_text=True)
        assert token.count(".") == 2
        stored = db_session.query(ConsentReceipt).filter_by(receipt_id=receipt_id).one()
        assert stored.event_seq == event.seq
        assert stored.jws == token


def test_the_overview_counts_given_consents(client, alice):
    follow(client, choose(client, SMS, "grant"))
    follow(client, choose(client, "/consents/maison-berlingot/analytics", "grant"))
    overview = text_of(client.get("/consents/"))
    assert "2 of 5 consents given" in overview
    assert "0 of 6 consents given" in overview


def test_posting_the_same_form_twice_records_one_event(client, alice, db_session):
    token = csrf_token(client, BRAND_PAGE)
    data = {"csrf_token": token, "choice": "grant", "version": "1"}
    first = client.post(SMS, data=data)
    second = client.post(SMS, data=data)
    html = text_of(follow(client, second))
    assert first.status_code == 303
    assert "“Offers by text message” was already given; nothing changed." in html
    assert [e.action for e in events_of(db_session, alice)] == ["granted"]
    # The same with a withdrawal.
    data["choice"] = "withdraw"
    client.post(SMS, data=data)
    html = text_of(follow(client, client.post(SMS, data=data)))
    assert "“Offers by text message” was not given; nothing changed." in html
    assert [e.action for e in events_of(db_session, alice)] == ["granted", "withdrawn"]


# ---- bad input --------------------------------------------------------------------------


def test_an_unknown_purpose_is_refused_clearly(client, alice, db_session):
    # postal-offers exists, but only for Aurore Automobiles.
    for path in ("/consents/maison-berlingot/postal-offers", "/consents/maison-berlingot/nope"):
        html = text_of(follow(client, choose(client, path, "grant")))
        assert "This brand does not ask for that consent (any more). Nothing was recorded." in html
    assert events_of(db_session) == []
    assert db_session.query(ConsentState).count() == 0


def test_a_form_for_an_older_text_records_nothing(client, alice, db_session):
    token = csrf_token(client, BRAND_PAGE)  # the page showed version 1
    purpose = purpose_of(db_session, "maison-berlingot", "personalised-offers")
    publish_version(db_session, purpose, new_text())
    db_session.commit()
    response = client.post(
        "/consents/maison-berlingot/personalised-offers",
        data={"csrf_token": token, "choice": "grant", "version": "1"},
    )
    assert response.headers["Location"].endswith("#purpose-personalised-offers")
    html = text_of(follow(client, response))
    assert "changed while the page was open. Nothing was recorded" in html
    assert "flash--warning" in html
    assert events_of(db_session) == []
    # The page now offers the new version.
    assert purpose_form(html, "personalised-offers")["version"] == "2"
    assert "(v2)" in html


def test_a_grant_to_an_old_text_asks_for_renewal_on_the_page(client, alice, db_session):
    follow(client, choose(client, "/consents/maison-berlingot/personalised-offers", "grant"))
    purpose = purpose_of(db_session, "maison-berlingot", "personalised-offers")
    publish_version(db_session, purpose, new_text())
    db_session.commit()
    html = text_of(client.get(BRAND_PAGE))
    card = html.split('id="purpose-personalised-offers"')[1].split("</section>")[0]
    assert "Needs your renewal" in card
    assert "Agree to the new version" in card
    assert purpose_form(html, "personalised-offers") | {"csrf_token": ""} == {
        "csrf_token": "",
        "choice": "grant",
        "version": "2",
        "action": "/consents/maison-berlingot/personalised-offers",
    }
    assert "1 needs your attention" in text_of(client.get("/consents/"))
    html = text_of(
        follow(client, choose(client, "/consents/maison-berlingot/personalised-offers", "grant", 2))
    )
    assert "Consent given" in html
    assert ledger.document_of(events_of(db_session, alice)[-1])["purpose_version"] == 2


def test_withdrawing_from_a_page_with_an_older_text_still_works(client, alice, db_session):
    """Withdrawal must never be blocked (GDPR art. 7(3)): the shown version does not matter."""
    follow(client, choose(client, "/consents/maison-berlingot/personalised-offers", "grant"))
    token = csrf_token(client, BRAND_PAGE)
    purpose = purpose_of(db_session, "maison-berlingot", "personalised-offers")
    publish_version(db_session, purpose, new_text())
    db_session.commit()
    response = client.post(
        "/consents/maison-berlingot/personalised-offers",
        data={"csrf_token": token, "choice": "withdraw", "version": "1"},
    )
    assert "Consent withdrawn" in text_of(follow(client, response))
    assert [e.action for e in events_of(db_session, alice)] == ["granted", "withdrawn"]


@pytest.mark.parametrize(
    "data",
    [
        {"choice": "yes", "version": "1"},
        {"choice": "", "version": "1"},
        {"version": "1"},
        {"choice": "grant", "version": "abc"},
        {"choice": "grant", "version": "1.5"},
        {"choice": "grant", "version": "0"},
        {"choice": "grant", "version": "-1"},
        {"choice": "grant", "version": "99999999999999999999"},
        {"choice": "grant"},
    ],
)
def test_a_tampered_form_is_refused_and_records_nothing(client, alice, db_session, data):
    response = submit(client, SMS, data, form_page=BRAND_PAGE)
    assert response.status_code == 303
    html = text_of(follow(client, response))
    assert NOT_UNDERSTOOD in html
    assert events_of(db_session) == []
    assert db_session.query(ConsentState).count() == 0


def test_a_form_without_its_csrf_token_is_refused(client, alice, db_session):
    response = client.post(SMS, data={"choice": "grant", "version": "1"})
    assert response.status_code == 400
    response = client.post(SMS, data={"choice": "grant", "version": "1", "csrf_token": "forged"})
    assert response.status_code == 400
    assert events_of(db_session) == []


# ---- history ------------------------------------------------------------------------


def test_history_pages_and_filters(client, alice, db_session, notary, change):
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    analytics = purpose_of(db_session, "aurore-automobiles", "analytics")
    for _ in range(10):
        service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
        service.withdraw(db_session, notary, alice, sms, change=change())
    service.grant(db_session, notary, alice, analytics, shown_version=1, change=change())
    db_session.commit()  # 21 events: two pages of 20

    first = history_rows(client)
    second = history_rows(client, "?page=2")
    assert len(first) == 20
    assert len(second) == 1
    assert first[0][0] == "granted"  # the Aurore analytics grant, the newest
    assert second == [("granted", second[0][1])]
    seqs = [e.seq for e in events_of(db_session, alice)]
    page_one = text_of(client.get("/consents/history"))
    assert "Page 1 of 2" in page_one
    assert 'rel="next"' in page_one
    assert 'rel="prev"' in text_of(client.get("/consents/history?page=2"))
    all_receipts = [r for _, r in first + second]
    assert len(set(all_receipts)) == len(seqs) == 21

    aurore = history_rows(client, "?brand=aurore-automobiles")
    maison = history_rows(client, "?brand=maison-berlingot")
    assert aurore == [first[0]]
    assert len(maison) == 20
    assert first[1:] == maison[:19]
    assert history_rows(client, "?brand=") == first

    for query in (
        "?page=abc",
        "?page=0",
        "?page=-1",
        "?page=3",
        "?page=1e3",
        "?page=²",
        "?brand=no-such-brand",
        "?brand=aurore-automobiles&page=2",
    ):
        assert client.get(f"/consents/history{query}").status_code == 404, query


def test_an_empty_history_has_one_page(client, alice):
    assert history_rows(client) == []
    assert "No consent change yet." in text_of(client.get("/consents/history"))
    assert client.get("/consents/history?page=1").status_code == 200
    assert client.get("/consents/history?page=2").status_code == 404


def test_history_shows_only_the_consumers_own_changes(
    client, alice, db_session, make_account, notary, change
):
    bob = make_account("bob@example.com")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    service.grant(db_session, notary, bob, sms, shown_version=1, change=change())
    db_session.commit()
    assert history_rows(client) == []


# ---- Global Privacy Control ------------------------------------------------------------


GPC = {"Sec-GPC": "1"}
GPC_MESSAGE = (
    "Your browser sent a Global Privacy Control signal, so we withdrew your consent to sharing "
    "your data with third parties (Maison Berlingot: Sharing with partner companies)."
)


def test_the_gpc_signal_withdraws_partner_sharing_and_says_so(client, alice, db_session):
    follow(client, choose(client, "/consents/maison-berlingot/partner-sharing", "grant"))
    follow(client, choose(client, "/consents/maison-berlingot/analytics", "grant"))
    page = client.get("/consents/", headers=GPC)
    assert page.status_code == 200
    assert GPC_MESSAGE in text_of(page)
    events = events_of(db_session, alice)
    assert [e.action for e in events] == ["granted", "granted", "withdrawn"]
    document = ledger.document_of(events[-1])
    assert (document["purpose"], document["method"]) == ("partner-sharing", "gpc-signal")
    assert history_rows(client)[0][0] == "withdrawn"
    assert "Global Privacy Control signal" in text_of(client.get("/consents/history"))
    # Said once: the next request with the signal has nothing more to withdraw.
    again = text_of(client.get("/consents/", headers=GPC))
    assert "so we withdrew your consent" not in again
    assert len(events_of(db_session, alice)) == 3
    assert purpose_form(text_of(client.get(BRAND_PAGE)), "analytics")["choice"] == "withdraw"


def test_the_signal_applies_on_any_page_of_a_signed_in_consumer(client, alice, db_session):
    follow(client, choose(client, "/consents/maison-berlingot/partner-sharing", "grant"))
    client.get("/", headers=GPC)
    assert [e.action for e in events_of(db_session, alice)] == ["granted", "withdrawn"]


def test_a_grant_given_with_the_signal_is_an_explicit_choice(client, alice, db_session):
    token = csrf_token(client, BRAND_PAGE)
    response = client.post(
        "/consents/maison-berlingot/partner-sharing",
        data={"csrf_token": token, "choice": "grant", "version": "1"},
        headers=GPC,
    )
    html = text_of(follow(client, response))
    assert "Consent given" in html
    assert "so we withdrew your consent" not in text_of(client.get("/consents/", headers=GPC))
    assert [e.action for e in events_of(db_session, alice)] == ["granted"]
    assert (
        purpose_form(text_of(client.get(BRAND_PAGE, headers=GPC)), "partner-sharing")["choice"]
        == "withdraw"
    )


def test_without_the_signal_nothing_is_withdrawn(client, alice, db_session):
    follow(client, choose(client, "/consents/maison-berlingot/partner-sharing", "grant"))
    for value in ("0", "", "yes"):
        client.get("/consents/", headers={"Sec-GPC": value})
    assert [e.action for e in events_of(db_session, alice)] == ["granted"]


# ---- double opt-in by email ---------------------------------------------------------------


EMAIL = "/consents/maison-berlingot/email-offers"


def test_email_offers_start_only_from_the_emailed_link(client, alice, db_session, mailbox):
    html = text_of(follow(client, choose(client, EMAIL, "grant")))
    assert "Almost done: we sent a link to alice@example.com." in html
    card = html.split('id="purpose-email-offers"')[1].split("</section>")[0]
    assert "Waiting for your email confirmation" in card
    assert events_of(db_session) == []

    link = link_in(mailbox.wait_for("alice@example.com"), "/consents/confirm/")
    # Opening the link (or a mail scanner fetching it) changes nothing: it shows a button.
    page = client.get(link)
    assert page.status_code == 200
    assert "Confirm my consent" in text_of(page)
    assert events_of(db_session) == []

    response = submit(client, link, {})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/consents/history")
    history = text_of(client.get(response.headers["Location"]))
    assert "Thank you: your consent is confirmed." in history
    assert "Confirmed by email" in history
    [event] = events_of(db_session, alice)
    document = ledger.document_of(event)
    assert (document["purpose"], document["action"], document["method"]) == (
        "email-offers",
        "granted",
        "email-confirmation",
    )
    assert purpose_form(text_of(client.get(BRAND_PAGE)), "email-offers")["choice"] == "withdraw"

    # The link works once.
    again = submit(client, link, {})
    assert again.status_code == 410
    assert "This link was already used" in text_of(again)
    assert len(events_of(db_session, alice)) == 1


def test_cancelling_a_pending_email_consent_voids_the_link(client, alice, db_session, mailbox):
    follow(client, choose(client, EMAIL, "grant"))
    link = link_in(mailbox.wait_for("alice@example.com"), "/consents/confirm/")
    html = text_of(follow(client, choose(client, EMAIL, "withdraw")))
    assert "Cancelled: “Offers and news by email” was not given." in html
    response = submit(client, link, {})
    assert response.status_code == 410
    assert events_of(db_session) == []


def test_another_consumer_cannot_use_the_link(
    client, alice, db_session, mailbox, make_account, new_browser
):
    follow(client, choose(client, EMAIL, "grant"))
    link = link_in(mailbox.wait_for("alice@example.com"), "/consents/confirm/")
    make_account("bob@example.com")
    bob = new_browser()
    sign_in(bob, "bob@example.com")
    response = submit(bob, link, {})
    assert response.status_code == 404
    assert "This link is not valid" in text_of(response)
    assert events_of(db_session) == []
    # A made-up link is not valid either.
    assert submit(client, "/consents/confirm/made-up", {}).status_code == 404
    assert events_of(db_session) == []


def test_confirming_without_the_csrf_token_is_refused(client, alice, db_session, mailbox):
    follow(client, choose(client, EMAIL, "grant"))
    link = link_in(mailbox.wait_for("alice@example.com"), "/consents/confirm/")
    assert client.post(link, data={}).status_code == 400
    assert events_of(db_session) == []
