"""The interests service: topic choices, interests, intents, and what a brand may see."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.interests.conftest import events_of, intents_in_db, interest_keys
from vrm_portal.clock import utcnow
from vrm_portal.interests import service
from vrm_portal.interests.models import Topic
from vrm_portal.interests.service import IntentInput, WithdrawOutcome

pytestmark = pytest.mark.usefixtures("catalogue")

AURORE = "aurore-automobiles"
BERLINGOT = "maison-berlingot"
COTEAUX = "domaine-des-coteaux"


def intent_input(**overrides):
    values = {
        "category": "replace-vehicle",
        "summary": "a family estate car",
        "horizon_months": 6,
        "budget_min": 15000,
        "budget_max": 25000,
        "brand_slugs": frozenset({AURORE}),
    }
    values.update(overrides)
    return IntentInput(**values)


# Interests


def test_topic_choices_lists_the_brands_topics_in_order_with_the_consumers_choices(
    db_session, make_account, brand
):
    alice = make_account()
    aurore = brand(AURORE)
    service.set_interests(db_session, alice, aurore, {"events"})

    choices = service.topic_choices(db_session, alice, aurore)

    assert [(t.key, chosen) for t, chosen in choices] == [
        ("electric-vehicles", False),
        ("maintenance-offers", False),
        ("new-models", False),
        ("events", True),
    ]


def test_retired_topics_are_not_offered(db_session, make_account, brand):
    alice = make_account()
    aurore = brand(AURORE)
    retire(db_session, aurore, "new-models")

    keys = [t.key for t, _chosen in service.topic_choices(db_session, alice, aurore)]

    assert "new-models" not in keys
    with pytest.raises(service.UnknownTopic):
        service.set_interests(db_session, alice, aurore, {"new-models"})


def test_setting_interests_adds_and_removes_and_records_what_changed(
    db_session, make_account, brand
):
    alice = make_account()
    aurore = brand(AURORE)
    first = service.set_interests(db_session, alice, aurore, {"events", "electric-vehicles"})
    second = service.set_interests(db_session, alice, aurore, {"events", "maintenance-offers"})
    db_session.commit()

    assert first.added == ["electric-vehicles", "events"]
    assert first.removed == []
    assert second.added == ["maintenance-offers"]
    assert second.removed == ["electric-vehicles"]
    assert interest_keys(db_session, alice) == {
        f"{AURORE}/events",
        f"{AURORE}/maintenance-offers",
    }
    events = events_of(db_session, alice, "interests_changed")
    assert [e.detail for e in events] == [
        {"brand": AURORE, "added": ["electric-vehicles", "events"], "removed": []},
        {"brand": AURORE, "added": ["maintenance-offers"], "removed": ["electric-vehicles"]},
    ]


def test_setting_the_same_interests_again_changes_and_records_nothing(
    db_session, make_account, brand
):
    alice = make_account()
    aurore = brand(AURORE)
    service.set_interests(db_session, alice, aurore, {"events"})

    again = service.set_interests(db_session, alice, aurore, {"events"})
    db_session.commit()

    assert not again.changed
    assert len(events_of(db_session, alice, "interests_changed")) == 1


def test_setting_no_interests_when_there_were_none_records_nothing(db_session, make_account, brand):
    alice = make_account()

    change = service.set_interests(db_session, alice, brand(AURORE), set())

    assert not change.changed
    assert events_of(db_session, alice, "interests_changed") == []


def test_interests_of_one_brand_leave_the_other_brands_alone(db_session, make_account, brand):
    alice = make_account()
    service.set_interests(db_session, alice, brand(BERLINGOT), {"workshops"})

    service.set_interests(db_session, alice, brand(AURORE), set())

    assert interest_keys(db_session, alice) == {f"{BERLINGOT}/workshops"}


@pytest.mark.parametrize(
    "keys",
    [
        {"events", "no-such-topic"},
        {"workshops"},  # Maison Berlingot's
        {"events", ""},
        {"EVENTS"},
        {"events\x00"},
    ],
)
def test_an_unknown_or_another_brands_topic_refuses_the_whole_change(
    db_session, make_account, brand, keys
):
    alice = make_account()
    aurore = brand(AURORE)
    service.set_interests(db_session, alice, aurore, {"electric-vehicles"})

    with pytest.raises(service.UnknownTopic):
        service.set_interests(db_session, alice, aurore, keys)

    assert interest_keys(db_session, alice) == {f"{AURORE}/electric-vehicles"}
    assert len(events_of(db_session, alice, "interests_changed")) == 1


def test_a_retired_topic_already_chosen_is_kept_when_saving(db_session, make_account, brand):
    alice = make_account()
    aurore = brand(AURORE)
    service.set_interests(db_session, alice, aurore, {"new-models"})
    retire(db_session, aurore, "new-models")

    change = service.set_interests(db_session, alice, aurore, {"events"})

    assert change.removed == []
    assert interest_keys(db_session, alice) == {f"{AURORE}/new-models", f"{AURORE}/events"}


def test_interests_belong_to_their_consumer(db_session, make_account, brand):
    alice = make_account()
    bob = make_account("bob@example.com")
    aurore = brand(AURORE)
    service.set_interests(db_session, alice, aurore, {"events"})

    service.set_interests(db_session, bob, aurore, {"electric-vehicles"})
    service.set_interests(db_session, bob, aurore, set())

    assert interest_keys(db_session, alice) == {f"{AURORE}/events"}
    assert interest_keys(db_session, bob) == set()


# Intents


@pytest.mark.parametrize(
    ("today", "months", "ends_on"),
    [
        (date(2025, 3, 10), 6, date(2025, 9, 10)),
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2025, 8, 31), 3, date(2025, 11, 30)),
        (date(2025, 12, 15), 1, date(2026, 1, 15)),
        (date(2025, 11, 30), 24, date(2027, 11, 30)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2025, 6, 1), 60, date(2030, 6, 1)),
    ],
)
def test_an_intent_ends_its_horizon_in_months_after_today(
    db_session, make_account, today, months, ends_on
):
    alice = make_account()

    intent = service.state_intent(db_session, alice, intent_input(horizon_months=months), today)

    assert intent.ends_on == ends_on


def test_stating_an_intent_stores_it_for_the_chosen_brands_and_records_it(
    db_session, make_account, brand
):
    alice = make_account()

    intent = service.state_intent(
        db_session,
        alice,
        intent_input(
            summary="  a family\testate   car ",
            brand_slugs=frozenset({AURORE, COTEAUX}),
            budget_min=None,
        ),
        date(2025, 3, 10),
    )
    db_session.commit()

    [stored] = intents_in_db(db_session, alice)
    assert stored.id == intent.id
    assert stored.summary == "a family estate car"
    assert stored.category == "replace-vehicle"
    assert (stored.budget_min, stored.budget_max, stored.currency) == (None, 25000, "EUR")
    assert sorted(link.brand.slug for link in stored.brands) == [AURORE, COTEAUX]
    [event] = events_of(db_session, alice, "intent_stated")
    assert event.detail == {
        "intent": intent.id,
        "category": "replace-vehicle",
        "brands": [AURORE, COTEAUX],
        "ends_on": "2025-09-10",
    }


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"category": "buy-yacht"}, "category"),
        ({"category": ""}, "category"),
        ({"summary": "x" * 201}, "summary"),
        ({"horizon_months": 0}, "horizon"),
        ({"horizon_months": 61}, "horizon"),
        ({"horizon_months": -6}, "horizon"),
        ({"budget_min": -1}, "budget_negative"),
        ({"budget_max": -1, "budget_min": None}, "budget_negative"),
        ({"budget_max": 10_000_001}, "budget_too_high"),
        ({"budget_min": 30000, "budget_max": 20000}, "budget_order"),
        ({"brand_slugs": frozenset()}, "no_brand"),
        ({"brand_slugs": frozenset({AURORE, "no-such-brand"})}, "unknown_brand"),
        ({"brand_slugs": frozenset({"Aurore Automobiles"})}, "unknown_brand"),
        ({"brand_slugs": frozenset({"aurore\x00"})}, "unknown_brand"),
    ],
)
def test_an_intent_that_breaks_a_rule_is_refused_with_its_reason(
    db_session, make_account, overrides, reason
):
    alice = make_account()

    with pytest.raises(service.IntentInvalid) as refused:
        service.state_intent(db_session, alice, intent_input(**overrides), date(2025, 3, 10))

    assert refused.value.reason == reason
    assert intents_in_db(db_session, alice) == []
    assert events_of(db_session, alice, "intent_stated") == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"summary": "x" * 200},
        {"summary": ""},
        {"horizon_months": 1},
        {"horizon_months": 60},
        {"budget_min": 0, "budget_max": 0},
        {"budget_min": None, "budget_max": None},
        {"budget_min": 10_000_000, "budget_max": 10_000_000},
        {"category": "other"},
    ],
)
def test_intents_at_the_limits_of_the_rules_are_accepted(db_session, make_account, overrides):
    alice = make_account()

    service.state_intent(db_session, alice, intent_input(**overrides), date(2025, 3, 10))

    assert len(intents_in_db(db_session, alice)) == 1


def test_the_same_intent_stated_twice_is_stored_once(db_session, make_account):
    alice = make_account()
    first = service.state_intent(db_session, alice, intent_input(), date(2025, 3, 10))

    with pytest.raises(service.IntentAlreadyStated) as again:
        service.state_intent(db_session, alice, intent_input(), date(2025, 3, 10))

    assert again.value.intent.id == first.id
    assert len(intents_in_db(db_session, alice)) == 1
    assert len(events_of(db_session, alice, "intent_stated")) == 1


def test_a_different_intent_or_one_stated_after_the_first_lapsed_is_stored(
    db_session, make_account
):
    alice = make_account()
    service.state_intent(db_session, alice, intent_input(horizon_months=1), date(2025, 3, 10))

    service.state_intent(db_session, alice, intent_input(horizon_months=3), date(2025, 3, 10))
    service.state_intent(db_session, alice, intent_input(horizon_months=1), date(2025, 5, 1))

    assert len(intents_in_db(db_session, alice)) == 3


def test_withdrawing_an_intent_stops_it_and_records_it_once(db_session, make_account, plan):
    alice = make_account()
    intent = plan(alice)
    now = utcnow()

    first = service.withdraw_intent(db_session, alice, intent.id, now)
    again = service.withdraw_intent(db_session, alice, intent.id, now + timedelta(minutes=1))
    db_session.commit()

    assert first.outcome is WithdrawOutcome.WITHDRAWN
    assert again.outcome is WithdrawOutcome.UNCHANGED
    [stored] = intents_in_db(db_session, alice)
    assert stored.withdrawn_at == now
    assert [e.detail for e in events_of(db_session, alice, "intent_withdrawn")] == [
        {"intent": intent.id}
    ]


def test_nobody_withdraws_another_consumers_intent(db_session, make_account, plan):
    alice = make_account()
    bob = make_account("bob@example.com")
    bobs = plan(bob)

    with pytest.raises(service.IntentNotFound):
        service.withdraw_intent(db_session, alice, bobs.id, utcnow())
    with pytest.raises(service.IntentNotFound):
        service.withdraw_intent(db_session, alice, bobs.id + 1000, utcnow())

    [stored] = intents_in_db(db_session, bob)
    assert stored.withdrawn_at is None
    assert events_of(db_session, alice, "intent_withdrawn") == []


def test_an_intent_is_active_until_its_end_date_then_past(db_session, make_account, plan):
    alice = make_account()
    intent = plan(alice, horizon_months=1, today=date(2025, 3, 10))

    on_last_day = service.intents_of(db_session, alice, date(2025, 4, 10))
    day_after = service.intents_of(db_session, alice, date(2025, 4, 11))

    assert on_last_day == ([intent], [])
    assert day_after == ([], [intent])


def test_withdrawn_intents_are_past_and_lists_are_newest_first(db_session, make_account, plan):
    alice = make_account()
    older = plan(alice, category="buy-vehicle", today=date(2025, 3, 10))
    newer = plan(alice, category="vehicle-service", today=date(2025, 3, 10))
    withdrawn = plan(alice, category="gift", today=date(2025, 3, 10))
    service.withdraw_intent(db_session, alice, withdrawn.id, utcnow())

    active, past = service.intents_of(db_session, alice, date(2025, 3, 11))

    assert active == [newer, older]
    assert past == [withdrawn]


def test_intents_of_lists_only_the_consumers_own(db_session, make_account, plan):
    alice = make_account()
    bob = make_account("bob@example.com")
    plan(bob)

    assert service.intents_of(db_session, alice, utcnow().date()) == ([], [])


# What a brand may see


def test_a_brand_sees_nothing_without_personalisation_consent(
    db_session, make_account, brand, plan
):
    alice = make_account()
    aurore = brand(AURORE)
    service.set_interests(db_session, alice, aurore, {"events"})
    plan(alice, brands=(AURORE,))

    shared = service.shared_with(db_session, aurore, alice, utcnow())

    assert shared == service.SharedProfile(interests=[], intents=[], allowed=False)


def test_a_brand_sees_its_topics_and_the_plans_shown_to_it_with_consent(
    db_session, make_account, brand, plan, personalisation
):
    alice = make_account()
    aurore, berlingot = brand(AURORE), brand(BERLINGOT)
    service.set_interests(db_session, alice, aurore, {"events", "electric-vehicles"})
    service.set_interests(db_session, alice, berlingot, {"workshops"})
    shown = plan(alice, brands=(AURORE, COTEAUX))
    plan(alice, brands=(BERLINGOT,), category="gift")
    personalisation(alice, AURORE)

    shared = service.shared_with(db_session, aurore, alice, utcnow())

    assert shared.allowed
    assert [t.key for t in shared.interests] == ["electric-vehicles", "events"]
    assert shared.intents == [shown]


def test_a_brand_does_not_see_lapsed_or_withdrawn_plans(
    db_session, make_account, brand, plan, personalisation
):
    alice = make_account()
    aurore = brand(AURORE)
    plan(alice, today=utcnow().date() - timedelta(days=400), horizon_months=12)
    withdrawn = plan(alice, category="buy-vehicle")
    service.withdraw_intent(db_session, alice, withdrawn.id, utcnow())
    personalisation(alice, AURORE)

    shared = service.shared_with(db_session, aurore, alice, utcnow())

    assert shared.allowed
    assert shared.intents == []


def test_consent_to_another_brand_or_withdrawn_consent_shares_nothing(
    db_session, make_account, brand, plan, personalisation
):
    alice = make_account()
    aurore = brand(AURORE)
    service.set_interests(db_session, alice, aurore, {"events"})
    plan(alice, brands=(AURORE, BERLINGOT))
    personalisation(alice, BERLINGOT)
    assert not service.shared_with(db_session, aurore, alice, utcnow()).allowed

    personalisation(alice, AURORE)
    assert service.shared_with(db_session, aurore, alice, utcnow()).allowed
    personalisation(alice, AURORE, give=False)

    shared = service.shared_with(db_session, aurore, alice, utcnow())
    assert shared == service.SharedProfile(interests=[], intents=[], allowed=False)


def test_an_expired_consent_shares_nothing(db_session, make_account, brand, personalisation):
    alice = make_account()
    aurore = brand(AURORE)
    service.set_interests(db_session, alice, aurore, {"events"})
    personalisation(alice, AURORE)

    later = utcnow() + timedelta(days=5 * 365)

    assert not service.shared_with(db_session, aurore, alice, later).allowed


def test_a_brand_sees_only_the_consumer_who_allowed_it(
    db_session, make_account, brand, plan, personalisation
):
    alice = make_account()
    bob = make_account("bob@example.com")
    aurore = brand(AURORE)
    service.set_interests(db_session, bob, aurore, {"events"})
    plan(bob)
    personalisation(alice, AURORE)

    shared = service.shared_with(db_session, aurore, alice, utcnow())

    assert shared == service.SharedProfile(interests=[], intents=[], allowed=True)


def retire(db_session, brand, key):
    topic = db_session.scalar(select(Topic).where(Topic.brand_id == brand.id, Topic.key == key))
    topic.retired = True
    db_session.commit()
