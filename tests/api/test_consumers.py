"""What a brand reads: only its consumers, each field only under an active consent."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from vrm_portal.clock import utcnow
from vrm_portal.consent import catalogue as purpose_catalogue
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod, ConsentState
from vrm_portal.consent.service import Change
from vrm_portal.history.models import AccessRecord
from vrm_portal.interests import service as interests


def _profiled(make_account, db_session, email="alice@example.com"):
    account = make_account(email)
    account.given_name = "Alice"
    account.family_name = "Martin"
    account.phone = "+33612345678"
    account.postal_address = "1 rue de la Paix\n75002 Paris"
    account.locale = "fr"
    db_session.commit()
    return account


def test_a_consumer_without_a_relationship_is_invisible(brand_api, make_account):
    make_account("alice@example.com")
    api = brand_api()
    page = api.get("/api/v1/consumers")
    assert page.status_code == 200
    assert page.json == {"items": [], "next_cursor": None}


def test_email_is_read_only_under_an_email_purpose(
    brand_api, make_account, db_session, consents, pairwise
):
    alice = _profiled(make_account, db_session)
    consents(alice, "aurore-automobiles", grant=("analytics",))
    api = brand_api()
    consumer_id = pairwise(alice, "aurore-automobiles")
    body = api.get(f"/api/v1/consumers/{consumer_id}").json
    assert [c["purpose"] for c in body["consents"]] == ["analytics"]
    assert body["profile"] == {}
    assert "interests" not in body

    consents(alice, "aurore-automobiles", grant=("email-offers",))
    body = api.get(f"/api/v1/consumers/{consumer_id}").json
    assert body["profile"] == {
        "given_name": "Alice",
        "family_name": "Martin",
        "language": "fr",
        "email": "alice@example.com",
    }

    consents(alice, "aurore-automobiles", grant=("sms-offers", "postal-offers"))
    profile = api.get(f"/api/v1/consumers/{consumer_id}").json["profile"]
    assert profile["phone"] == "+33612345678"
    assert profile["postal_address"] == "1 rue de la Paix\n75002 Paris"

    consents(alice, "aurore-automobiles", withdraw=("email-offers", "sms-offers"))
    profile = api.get(f"/api/v1/consumers/{consumer_id}").json["profile"]
    assert "email" not in profile
    assert "phone" not in profile
    assert profile["postal_address"].startswith("1 rue")


def test_a_consent_to_an_outdated_text_or_expired_counts_for_nothing(
    brand_api, make_account, db_session, consents, pairwise
):
    alice = _profiled(make_account, db_session)
    consents(alice, "aurore-automobiles", grant=("email-offers", "sms-offers"))
    api = brand_api()
    consumer_id = pairwise(alice, "aurore-automobiles")
    purpose = service.find_purpose(db_session, "aurore-automobiles", "email-offers")
    purpose_catalogue.publish_version(
        db_session,
        purpose,
        purpose_catalogue.PurposeText(
            title_en="Offers (v2)", title_fr="Offres (v2)", text_en="New.", text_fr="Nouveau."
        ),
    )
    db_session.commit()
    body = api.get(f"/api/v1/consumers/{consumer_id}").json
    assert [c["purpose"] for c in body["consents"]] == ["sms-offers"]
    assert "email" not in body["profile"]
    assert body["profile"]["phone"]

    state = db_session.scalar(select(ConsentState).where(ConsentState.account_id == alice.id))
    for state in db_session.scalars(
        select(ConsentState).where(ConsentState.account_id == alice.id)
    ):
        state.expires_at = utcnow() - timedelta(seconds=1)
    db_session.commit()
    body = api.get(f"/api/v1/consumers/{consumer_id}").json
    assert body["consents"] == []
    assert body["profile"] == {}


def test_interests_and_plans_only_under_personalisation(
    brand_api, make_account, db_session, consents, pairwise
):
    alice = _profiled(make_account, db_session)
    brand = service.find_purpose(db_session, "aurore-automobiles", "analytics").brand
    consents(alice, "aurore-automobiles", grant=("analytics",))
    interests.set_interests(db_session, alice, brand, {"electric-vehicles"})
    interests.state_intent(
        db_session,
        alice,
        interests.IntentInput(
            category="replace-vehicle",
            summary="Replace my car",
            horizon_months=6,
            budget_min=20000,
            budget_max=30000,
            brand_slugs=frozenset({"aurore-automobiles"}),
        ),
        utcnow().date(),
    )
    db_session.commit()
    api = brand_api()
    consumer_id = pairwise(alice, "aurore-automobiles")
    body = api.get(f"/api/v1/consumers/{consumer_id}").json
    assert "interests" not in body
    assert "intents" not in body

    consents(alice, "aurore-automobiles", grant=("personalised-offers",))
    body = api.get(f"/api/v1/consumers/{consumer_id}").json
    assert body["interests"] == ["electric-vehicles"]
    assert body["intents"][0]["summary"] == "Replace my car"
    assert body["intents"][0]["budget"] == {"min": 20000, "max": 30000, "currency": "EUR"}


def test_another_brands_consumer_is_a_plain_404(brand_api, make_account, consents, pairwise):
    alice = make_account("alice@example.com")
    consents(alice, "maison-berlingot", grant=("analytics",))
    other_brands_id = pairwise(alice, "maison-berlingot")
    api = brand_api("aurore-automobiles")
    unknown = api.get("/api/v1/consumers/00000000-0000-4000-8000-000000000000")
    theirs = api.get(f"/api/v1/consumers/{other_brands_id}")
    malformed = api.get("/api/v1/consumers/not-an-id")
    for response in (unknown, theirs, malformed):
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
    assert unknown.json == theirs.json == malformed.json
    assert api.get("/api/v1/consumers").json["items"] == []


def test_keyset_pages_cover_everyone_once(brand_api, make_account, consents):
    for n in range(5):
        consents(make_account(f"c{n}@example.com"), "aurore-automobiles", grant=("analytics",))
    api = brand_api()
    seen, cursor, pages = [], "", 0
    while True:
        page = api.get(f"/api/v1/consumers?limit=2&cursor={cursor}").json
        pages += 1
        seen += [item["consumer_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    assert pages == 3


def test_bad_paging_parameters_are_explained(brand_api):
    api = brand_api()
    for query in (
        "limit=0",
        "limit=1001",
        "limit=abc",
        "cursor=-1",
        "limit=\u0661\u0660",
        "cursor=1.5",
    ):
        response = api.get(f"/api/v1/consumers?{query}")
        assert response.status_code == 400, query
        assert response.mimetype == "application/problem+json"
        assert response.json["errors"][0]["field"] in ("limit", "cursor")


def test_each_read_leaves_one_access_record(
    brand_api, make_account, consents, db_session, pairwise
):
    people = [make_account(f"c{n}@example.com") for n in range(3)]
    for person in people:
        consents(person, "aurore-automobiles", grant=("email-offers",))
    api = brand_api()
    assert len(api.get("/api/v1/consumers?limit=10").json["items"]) == 3
    api.get(f"/api/v1/consumers/{pairwise(people[1], 'aurore-automobiles')}")
    records = db_session.scalars(select(AccessRecord).order_by(AccessRecord.id)).all()
    assert [(r.kind, r.count) for r in records] == [("consumers", 3), ("consumer", 1)]
    assert "profile.email" in records[0].fields
    assert "consents" in records[0].fields
    assert records[1].first_id == records[1].last_id
    assert records[0].first_id <= records[1].first_id <= records[0].last_id
    assert records[0].scope == "consumers:read"


def test_grant_through_import_does_not_wait_for_confirmation(
    db_session, make_account, notary, catalogue
):
    """(Guard for the fixtures: an IMPORT grant of an email purpose is recorded at once.)"""
    alice = make_account("alice@example.com")
    purpose = service.find_purpose(db_session, "aurore-automobiles", "email-offers")
    result = service.grant(
        db_session,
        notary,
        alice,
        purpose,
        shown_version=purpose.current_version,
        change=Change(CollectionMethod.IMPORT, "en", utcnow()),
    )
    assert result.outcome == service.Outcome.RECORDED
