"""The interests and plans pages: what they show, what they save, and what they refuse."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.accounts.flows import error_summary, field_errors, text
from tests.conftest import submit
from tests.interests.conftest import events_of, intents_in_db, interest_keys
from vrm_portal.clock import utcnow

pytestmark = pytest.mark.usefixtures("catalogue")

AURORE = "aurore-automobiles"
BERLINGOT = "maison-berlingot"
COTEAUX = "domaine-des-coteaux"
PURPOSE_TITLE = "Offers chosen from your interests and plans"


def save_interests(client, slug, topics):
    return submit(client, f"/interests/{slug}", {"topics": topics}, form_page="/interests")


def state_plan(client, **fields):
    data = {
        "category": "replace-vehicle",
        "summary": "a family estate car",
        "horizon": "6",
        "budget_min": "15000",
        "budget_max": "25000",
        "brands": [AURORE],
    }
    data.update(fields)
    return submit(client, "/intents", data)


def flashes(client, path):
    return text(client.get(path))


def section(html, slug):
    match = re.search(rf'<section[^>]*id="brand-{slug}".*?</section>', html, re.S)
    assert match, slug
    return match.group(0)


def checked(html, slug):
    return set(re.findall(r'value="([^"]+)" id="topic-[^"]+" checked', section(html, slug)))


# Sign-in


@pytest.mark.parametrize("path", ["/interests", "/intents"])
def test_the_pages_are_for_signed_in_consumers(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response.location.startswith("/login")


@pytest.mark.parametrize("path", [f"/interests/{AURORE}", "/intents", "/intents/1/withdraw"])
def test_signed_out_posts_change_nothing(client, alice, path, new_browser):
    stranger = new_browser()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', text(stranger.get("/login"))).group(
        1
    )

    response = stranger.post(path, data={"csrf_token": token, "topics": ["events"]})

    assert response.status_code == 302
    assert response.location.startswith("/login")


# Interests


def test_the_interests_page_has_one_fieldset_and_save_button_per_brand(client, alice):
    html = text(client.get("/interests"))

    for slug, name in [
        (AURORE, "Aurore Automobiles"),
        (BERLINGOT, "Maison Berlingot"),
        (COTEAUX, "Domaine des Coteaux"),
    ]:
        part = section(html, slug)
        assert part.count("<fieldset") == 1
        assert f"What interests you at {name}?" in part
        assert f"Save my interests for {name}" in part
        assert f'action="/interests/{slug}"' in part
    assert 'value="electric-vehicles" id="topic-aurore-automobiles-electric-vehicles"' in html
    assert '<label class="checkbox__label" for="topic-maison-berlingot-workshops">' in html


def test_the_interests_page_says_whether_each_brand_may_see_them(client, alice, personalisation):
    html = text(client.get("/interests"))
    berlingot = section(html, BERLINGOT)
    assert f"Maison Berlingot sees these only while you give “{PURPOSE_TITLE}”." in berlingot
    assert "You do not give it now" in berlingot
    assert f'href="/consents/{BERLINGOT}"' in berlingot

    personalisation(alice, BERLINGOT)

    html = text(client.get("/interests"))
    assert "You give it now" in section(html, BERLINGOT)
    assert "You do not give it now" in section(html, AURORE)


def test_saving_interests_stores_them_and_says_so(client, alice, db_session):
    response = save_interests(client, AURORE, ["events", "electric-vehicles"])

    assert response.status_code == 303
    assert response.location == f"/interests#brand-{AURORE}"
    html = flashes(client, "/interests")
    assert "Your interests for Aurore Automobiles are saved." in html
    assert checked(html, AURORE) == {"events", "electric-vehicles"}
    assert interest_keys(db_session, alice) == {f"{AURORE}/events", f"{AURORE}/electric-vehicles"}
    assert len(events_of(db_session, alice, "interests_changed")) == 1


def test_unticking_everything_removes_the_brands_interests(client, alice, db_session):
    save_interests(client, AURORE, ["events"])
    save_interests(client, BERLINGOT, ["workshops"])

    response = save_interests(client, AURORE, [])

    assert response.status_code == 303
    assert interest_keys(db_session, alice) == {f"{BERLINGOT}/workshops"}


def test_saving_the_same_interests_twice_says_nothing_changed(client, alice, db_session):
    save_interests(client, AURORE, ["events"])
    client.get("/interests")

    response = save_interests(client, AURORE, ["events"])

    assert response.status_code == 303
    assert "Nothing changed" in flashes(client, "/interests")
    assert interest_keys(db_session, alice) == {f"{AURORE}/events"}
    assert len(events_of(db_session, alice, "interests_changed")) == 1


@pytest.mark.parametrize(
    "topics",
    [["events", "no-such-topic"], ["workshops"], ["events", "x" * 5000], ["events\x00"]],
    ids=["unknown", "another-brands", "huge", "nul"],
)
def test_an_unknown_or_another_brands_topic_is_refused_and_nothing_changes(
    client, alice, db_session, topics
):
    save_interests(client, AURORE, ["maintenance-offers"])

    response = save_interests(client, AURORE, topics)

    assert response.status_code == 422
    html = text(response)
    message = "Aurore Automobiles does not offer one of the topics you sent"
    assert message in error_summary(response)
    assert message in section(html, AURORE)
    assert f'href="#brand-{AURORE}-topics"' in error_summary(response)
    assert interest_keys(db_session, alice) == {f"{AURORE}/maintenance-offers"}
    assert len(events_of(db_session, alice, "interests_changed")) == 1


def test_a_refused_form_keeps_the_valid_ticks(client, alice):
    response = save_interests(client, AURORE, ["events", "no-such-topic"])

    assert checked(text(response), AURORE) == {"events"}


@pytest.mark.parametrize("slug", ["no-such-brand", "Aurore-Automobiles", "a" * 300, "%00"])
def test_saving_interests_for_an_unknown_brand_is_not_found(client, alice, db_session, slug):
    response = save_interests(client, slug, ["events"])

    assert response.status_code == 404
    assert interest_keys(db_session, alice) == set()


def test_saving_interests_without_the_csrf_token_is_refused(client, alice, db_session):
    response = client.post(f"/interests/{AURORE}", data={"topics": ["events"]})

    assert response.status_code == 400
    assert interest_keys(db_session, alice) == set()


# Intents


def test_with_no_plans_the_page_says_so_and_offers_the_form(client, alice):
    html = text(client.get("/intents"))

    assert "You have not stated any plans yet." in html
    assert '<select class="input" id="category" name="category" required>' in html
    for months in ("1", "3", "6", "12", "24"):
        assert re.search(rf'<option (selected )?value="{months}">', html)
    assert '<option selected value="6">Within 6 months</option>' in html
    assert 'name="brands" value="domaine-des-coteaux"' in html
    assert "Would see it only once you give" in html


def test_stating_a_plan_stores_it_and_lists_it(client, alice, db_session):
    response = state_plan(client, brands=[AURORE, COTEAUX])

    assert response.status_code == 303
    [intent] = intents_in_db(db_session, alice)
    assert response.location == f"/intents#intent-{intent.id}"
    assert intent.category == "replace-vehicle"
    assert intent.horizon_months == 6
    assert (intent.budget_min, intent.budget_max) == (15000, 25000)
    assert sorted(link.brand.slug for link in intent.brands) == [AURORE, COTEAUX]
    html = flashes(client, "/intents")
    assert "Your plan is saved." in html
    assert "Replace my vehicle" in html
    assert "a family estate car" in html
    assert "Between €15,000 and €25,000" in html
    # Neither brand has the personalisation consent: it is shown to none of them, and
    # the page says why, with the way to give it.
    assert "No brand at the moment" in html
    assert "Aurore Automobiles: you have not given" in html
    assert 'href="/consents/aurore-automobiles#purpose-personalised-offers"' in html
    assert f'action="/intents/{intent.id}/withdraw"' in html
    assert "You have not stated any plans yet." not in html
    assert len(events_of(db_session, alice, "intent_stated")) == 1


def test_a_horizon_outside_the_list_but_within_five_years_is_accepted(client, alice, db_session):
    response = state_plan(client, horizon="7", budget_min=" 15 000 € ", budget_max="")

    assert response.status_code == 303
    [intent] = intents_in_db(db_session, alice)
    assert (intent.horizon_months, intent.budget_min, intent.budget_max) == (7, 15000, None)
    assert "From €15,000" in flashes(client, "/intents")


def test_control_characters_in_the_summary_are_dropped(client, alice, db_session):
    response = state_plan(client, summary="an\x00 estate\r\ncar\x1b")

    assert response.status_code == 303
    [intent] = intents_in_db(db_session, alice)
    assert intent.summary == "an estate car"


def test_the_same_plan_sent_twice_is_stored_once(client, alice, db_session):
    state_plan(client)

    response = state_plan(client)

    assert response.status_code == 303
    assert "You already shared this plan. Nothing was added." in flashes(client, "/intents")
    assert len(intents_in_db(db_session, alice)) == 1
    assert len(events_of(db_session, alice, "intent_stated")) == 1


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"category": ""}, "category", "Choose what you plan from the list."),
        ({"category": "buy-yacht"}, "category", "Choose what you plan from the list."),
        ({"summary": "x" * 201}, "summary", "Describe your plan in at most 200 characters."),
        ({"horizon": "0"}, "horizon", "Choose when you plan it"),
        ({"horizon": "61"}, "horizon", "Choose when you plan it"),
        ({"horizon": "six"}, "horizon", "Choose when you plan it"),
        ({"horizon": "9" * 400}, "horizon", "Choose when you plan it"),
        ({"budget_min": "abc"}, "budget_min", "Enter a whole number of euros"),
        ({"budget_min": "12.5"}, "budget_min", "Enter a whole number of euros"),
        ({"budget_min": "²"}, "budget_min", "Enter a whole number of euros"),
        ({"budget_min": "9" * 5000}, "budget_min", "Enter a whole number of euros"),
        ({"budget_min": "-5"}, "budget_min", "A budget cannot be below zero."),
        ({"budget_max": "10000001"}, "budget_max", "at most 10,000,000 euros"),
        (
            {"budget_min": "30000", "budget_max": "20000"},
            "budget_max",
            "The highest budget must not be lower than the lowest budget.",
        ),
        ({"brands": []}, "brands", "Choose at least one brand that may see this plan."),
        ({"brands": [AURORE, "no-such-brand"]}, "brands", "is not known (any more)"),
        ({"brands": ["aurore\x00"]}, "brands", "is not known (any more)"),
    ],
)
def test_a_plan_that_breaks_a_rule_is_sent_back_with_a_message_and_nothing_is_stored(
    client, alice, db_session, fields, field_id, message
):
    response = state_plan(client, **fields)

    assert response.status_code == 422
    assert message in error_summary(response)
    if field_id == "brands":
        assert message in text(response).split('id="brands"', 1)[1]
    else:
        assert any(message in m for m in field_errors(response, field_id))
    assert intents_in_db(db_session, alice) == []
    assert events_of(db_session, alice, "intent_stated") == []


def test_a_refused_plan_keeps_what_was_typed(client, alice):
    response = state_plan(
        client,
        summary="an estate car",
        horizon="12",
        budget_min="30000",
        budget_max="20000",
        brands=[COTEAUX],
    )

    html = text(response)
    assert response.status_code == 422
    assert 'value="an estate car"' in html
    assert '<option selected value="replace-vehicle">' in html
    assert '<option selected value="12">' in html
    assert 'value="30000"' in html
    assert 'value="20000"' in html
    assert 'value="domaine-des-coteaux" id="brands-domaine-des-coteaux"' in html
    assert re.search(r'id="brands-domaine-des-coteaux"[^>]* checked', html)
    assert not re.search(r'id="brands-aurore-automobiles"[^>]* checked', html)


def test_withdrawing_a_plan_moves_it_to_past_plans(client, alice, db_session):
    state_plan(client)
    [intent] = intents_in_db(db_session, alice)

    response = submit(client, f"/intents/{intent.id}/withdraw", {}, form_page="/intents")

    assert response.status_code == 303
    assert response.location == f"/intents#intent-{intent.id}"
    html = flashes(client, "/intents")
    assert "“Replace my vehicle” is withdrawn: no brand sees it any more." in html
    assert "You have no current plans." in html
    assert "Past plans" in html
    assert f'action="/intents/{intent.id}/withdraw"' not in html
    [stored] = intents_in_db(db_session, alice)
    assert stored.withdrawn_at is not None


def test_withdrawing_twice_says_it_was_already_withdrawn(client, alice, db_session):
    state_plan(client)
    [intent] = intents_in_db(db_session, alice)
    token_page = "/intents"
    submit(client, f"/intents/{intent.id}/withdraw", {}, form_page=token_page)
    client.get("/intents")

    response = submit(client, f"/intents/{intent.id}/withdraw", {}, form_page=token_page)

    assert response.status_code == 303
    assert "was already withdrawn. Nothing changed." in flashes(client, "/intents")
    assert len(events_of(db_session, alice, "intent_withdrawn")) == 1


def test_another_consumers_plan_cannot_be_withdrawn(client, alice, db_session, make_account, plan):
    bob = make_account("bob@example.com")
    bobs = plan(bob)

    response = submit(client, f"/intents/{bobs.id}/withdraw", {}, form_page="/intents")

    assert response.status_code == 404
    [stored] = intents_in_db(db_session, bob)
    assert stored.withdrawn_at is None
    assert events_of(db_session, bob, "intent_withdrawn") == []
    assert events_of(db_session, alice, "intent_withdrawn") == []


def test_another_consumers_plans_are_not_listed(client, alice, make_account, plan):
    bob = make_account("bob@example.com")
    plan(bob, summary="bob's secret plan")

    html = text(client.get("/intents"))

    assert "bob&#39;s secret plan" not in html
    assert "You have not stated any plans yet." in html


@pytest.mark.parametrize(
    "intent_id", ["999999", "0", "2147483648", "99999999999999999999", "-1", "abc"]
)
def test_withdrawing_an_unknown_plan_is_not_found(client, alice, intent_id):
    response = submit(client, f"/intents/{intent_id}/withdraw", {}, form_page="/intents")

    assert response.status_code == 404


def test_a_lapsed_plan_is_shown_as_past_without_a_withdraw_button(client, alice, db_session, plan):
    lapsed = plan(alice, today=utcnow().date() - timedelta(days=100), horizon_months=1)

    html = text(client.get("/intents"))

    assert "You have no current plans." in html
    assert "Past plans" in html
    assert "Ended on" in html
    assert f'action="/intents/{lapsed.id}/withdraw"' not in html


def test_the_brand_hints_follow_personalisation_consent(client, alice, personalisation):
    personalisation(alice, AURORE)

    html = text(client.get("/intents"))

    hint = re.search(r'id="brands-aurore-automobiles-hint">(.*?)</p>', html, re.S).group(1)
    assert f"Would see it now: you give “{PURPOSE_TITLE}”." in hint


def test_the_pages_are_in_french_for_a_french_reader(client, alice):
    response = client.get("/intents", headers={"Accept-Language": "fr"})

    assert response.status_code == 200
    assert '<html lang="fr">' in text(response)
