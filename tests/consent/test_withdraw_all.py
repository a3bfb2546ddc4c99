"""Withdrawing several consents in one click: all of one brand's, or all marketing of
every brand. One ledger event (and receipt, and feed entry) per consent withdrawn."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import csrf_token, submit
from tests.consent.conftest import events_of, purpose_of
from vrm_portal.brands.models import BrandChange
from vrm_portal.consent import service
from vrm_portal.consent.models import ConsentReceipt, ConsentState


def _give(db_session, notary, change, account, *pairs):
    for brand, key in pairs:
        purpose = purpose_of(db_session, brand, key)
        service.grant(
            db_session,
            notary,
            account,
            purpose,
            shown_version=purpose.current_version,
            change=change(),
        )
    db_session.commit()


def _status(db_session, account, brand, key):
    db_session.expire_all()
    purpose = purpose_of(db_session, brand, key)
    state = db_session.scalar(
        select(ConsentState).where(
            ConsentState.account_id == account.id, ConsentState.purpose_id == purpose.id
        )
    )
    return state.status if state else None


def _withdrawn_feed(db_session, brand_slug):
    brand = purpose_of(db_session, brand_slug, "sms-offers").brand
    return db_session.scalars(
        select(BrandChange.data).where(
            BrandChange.brand_id == brand.id, BrandChange.kind == "consent.withdrawn"
        )
    ).all()


def test_withdraw_all_consents_to_one_brand_in_one_click(client, alice, db_session, notary, change):
    _give(
        db_session,
        notary,
        change,
        alice,
        ("maison-berlingot", "sms-offers"),
        ("maison-berlingot", "analytics"),
        ("aurore-automobiles", "sms-offers"),
    )
    before = len(events_of(db_session, alice))

    response = submit(
        client,
        "/consents/maison-berlingot/all/withdraw",
        {},
        form_page="/consents/maison-berlingot",
    )

    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert "2 consents to Maison Berlingot withdrawn." in page
    events = events_of(db_session, alice)
    assert sorted((e.brand_slug, e.purpose_key, e.action) for e in events[before:]) == [
        ("maison-berlingot", "analytics", "withdrawn"),
        ("maison-berlingot", "sms-offers", "withdrawn"),
    ]
    assert len(events) - before == 2
    assert _status(db_session, alice, "maison-berlingot", "sms-offers") == "withdrawn"
    assert _status(db_session, alice, "maison-berlingot", "analytics") == "withdrawn"
    assert _status(db_session, alice, "aurore-automobiles", "sms-offers") == "granted"
    assert sorted(d["purpose"] for d in _withdrawn_feed(db_session, "maison-berlingot")) == [
        "analytics",
        "sms-offers",
    ]
    assert _withdrawn_feed(db_session, "aurore-automobiles") == []
    receipts = db_session.scalars(
        select(ConsentReceipt.event_seq).where(
            ConsentReceipt.event_seq.in_([e.seq for e in events[before:]])
        )
    ).all()
    assert len(receipts) == 2

    again = submit(
        client,
        "/consents/maison-berlingot/all/withdraw",
        {},
        form_page="/consents/maison-berlingot",
    )
    assert "You had given no consent to Maison Berlingot: nothing to withdraw." in client.get(
        again.location
    ).get_data(as_text=True)
    assert len(events_of(db_session, alice)) == before + 2


def test_withdraw_all_without_csrf_changes_nothing(client, alice, db_session, notary, change):
    _give(db_session, notary, change, alice, ("maison-berlingot", "sms-offers"))
    before = len(events_of(db_session, alice))

    response = client.post("/consents/maison-berlingot/all/withdraw", data={})

    assert response.status_code in (303, 400)
    assert len(events_of(db_session, alice)) == before
    assert _status(db_session, alice, "maison-berlingot", "sms-offers") == "granted"
    assert (
        client.post(
            "/consents/no-such-brand/all/withdraw",
            data={"csrf_token": csrf_token(client, "/consents/")},
        ).status_code
        == 404
    )


def test_stop_all_marketing_withdraws_marketing_of_every_brand_and_keeps_the_rest(
    client, alice, db_session, notary, change
):
    _give(
        db_session,
        notary,
        change,
        alice,
        ("maison-berlingot", "sms-offers"),
        ("aurore-automobiles", "postal-offers"),
        ("aurore-automobiles", "personalised-offers"),
        ("aurore-automobiles", "analytics"),
        ("maison-berlingot", "partner-sharing"),
    )
    before = len(events_of(db_session, alice))
    overview = client.get("/consents/").get_data(as_text=True)
    assert "Marketing means offers by email, by SMS and by post" in overview

    response = submit(client, "/consents/all/marketing/withdraw", {}, form_page="/consents/")

    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert "3 marketing consents withdrawn." in page
    new = events_of(db_session, alice)[before:]
    assert sorted((e.brand_slug, e.purpose_key) for e in new) == [
        ("aurore-automobiles", "personalised-offers"),
        ("aurore-automobiles", "postal-offers"),
        ("maison-berlingot", "sms-offers"),
    ]
    assert all(e.action == "withdrawn" for e in new)
    # Brands in ascending id: the events follow the lock order.
    brand_ids = [purpose_of(db_session, e.brand_slug, e.purpose_key).brand_id for e in new]
    assert brand_ids == sorted(brand_ids)
    assert _status(db_session, alice, "aurore-automobiles", "analytics") == "granted"
    assert _status(db_session, alice, "maison-berlingot", "partner-sharing") == "granted"
    assert [d["purpose"] for d in _withdrawn_feed(db_session, "maison-berlingot")] == ["sms-offers"]

    again = submit(client, "/consents/all/marketing/withdraw", {}, form_page="/consents/")
    assert "You had given no marketing consent: nothing to withdraw." in client.get(
        again.location
    ).get_data(as_text=True)


def test_stop_all_marketing_cancels_an_email_consent_waiting_for_confirmation(
    client, alice, db_session, notary, change
):
    purpose = purpose_of(db_session, "maison-berlingot", "email-offers")
    result = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    db_session.commit()
    assert result.outcome is service.Outcome.CONFIRMATION_SENT
    before = len(events_of(db_session, alice))

    submit(client, "/consents/all/marketing/withdraw", {}, form_page="/consents/")

    assert len(events_of(db_session, alice)) == before
    assert _status(db_session, alice, "maison-berlingot", "email-offers") is None
