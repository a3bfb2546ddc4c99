"""The change feed: every consent, interest and plan change of the brand's consumers, in
order, with a cursor that never skips nor repeats."""

from __future__ import annotations

from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.interests import service as interests


def _all(api, after="0", limit=100):
    page = api.get(f"/api/v1/changes?after={after}&limit={limit}")
    assert page.status_code == 200, page.get_data(as_text=True)
    return page.json


def test_consent_changes_in_order_with_their_purpose(brand_api, make_account, consents, pairwise):
    alice = make_account("alice@example.com")
    consents(alice, "aurore-automobiles", grant=("analytics", "sms-offers"))
    consents(alice, "aurore-automobiles", withdraw=("analytics",))
    api = brand_api()
    feed = _all(api)
    kinds = [(c["type"], c["data"]["purpose"]) for c in feed["items"]]
    assert kinds == [
        ("consent.granted", "analytics"),
        ("consent.granted", "sms-offers"),
        ("consent.withdrawn", "analytics"),
    ]
    assert [c["seq"] for c in feed["items"]] == [1, 2, 3]
    assert {c["consumer_id"] for c in feed["items"]} == {pairwise(alice, "aurore-automobiles")}
    assert feed["next_cursor"] == "3"
    assert _all(api, after="3") == {"items": [], "next_cursor": "3"}
    assert [c["seq"] for c in _all(api, after="1", limit=1)["items"]] == [2]


def test_a_brand_sees_only_its_own_feed(brand_api, make_account, consents):
    alice = make_account("alice@example.com")
    consents(alice, "maison-berlingot", grant=("analytics",))
    assert _all(brand_api("aurore-automobiles"))["items"] == []
    assert len(_all(brand_api("maison-berlingot"))["items"]) == 1


def test_interest_and_plan_changes_reach_brands_that_know_the_consumer(
    brand_api, make_account, consents, db_session
):
    alice = make_account("alice@example.com")
    consents(alice, "aurore-automobiles", grant=("personalised-offers",))
    aurore = brand_by_slug(db_session, "aurore-automobiles")
    berlingot = brand_by_slug(db_session, "maison-berlingot")
    interests.set_interests(db_session, alice, aurore, {"electric-vehicles"})
    interests.set_interests(db_session, alice, berlingot, {"workshops"})
    intent = interests.state_intent(
        db_session,
        alice,
        interests.IntentInput(
            category="replace-vehicle",
            summary="",
            horizon_months=6,
            budget_min=None,
            budget_max=None,
            brand_slugs=frozenset({"aurore-automobiles", "maison-berlingot"}),
        ),
        utcnow().date(),
    )
    interests.withdraw_intent(db_session, alice, intent.id, utcnow())
    db_session.commit()
    types = [c["type"] for c in _all(brand_api("aurore-automobiles"))["items"]]
    assert types == [
        "consent.granted",
        "interests.changed",
        "intents.changed",
        "intents.changed",
    ]
    # Maison Berlingot never dealt with Alice: she does not exist for it.
    assert _all(brand_api("maison-berlingot"))["items"] == []


def test_bad_cursor_is_explained(brand_api):
    api = brand_api()
    for query in ("after=x", "after=-3", "limit=0", "after=1e3", "after=" + "9" * 30):
        response = api.get(f"/api/v1/changes?{query}")
        assert response.status_code == 400, query
        assert response.mimetype == "application/problem+json"


def test_a_rolled_back_change_leaves_no_entry_and_no_gap(
    brand_api, make_account, consents, db_session, notary
):
    from vrm_portal.consent import service
    from vrm_portal.consent.models import CollectionMethod
    from vrm_portal.consent.service import Change

    alice = make_account("alice@example.com")
    consents(alice, "aurore-automobiles", grant=("analytics",))
    purpose = service.find_purpose(db_session, "aurore-automobiles", "sms-offers")
    service.grant(
        db_session,
        notary,
        alice,
        purpose,
        shown_version=purpose.current_version,
        change=Change(CollectionMethod.IMPORT, "en", utcnow()),
    )
    db_session.rollback()
    consents(alice, "aurore-automobiles", grant=("partner-sharing",))
    items = _all(brand_api())["items"]
    assert [(c["seq"], c["data"]["purpose"]) for c in items] == [
        (1, "analytics"),
        (2, "partner-sharing"),
    ]
