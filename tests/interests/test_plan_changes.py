"""Plans: who really sees them, changing one, and undoing a withdrawal."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from tests.conftest import submit
from tests.interests.conftest import events_of, intents_in_db
from vrm_portal.api import projection
from vrm_portal.brands.models import BrandChange
from vrm_portal.brands.service import relationship_with
from vrm_portal.clock import utcnow

AURORE, COTEAUX = "aurore-automobiles", "domaine-des-coteaux"


def _intents_feed(db_session, brand):
    db_session.expire_all()
    return db_session.scalars(
        select(BrandChange.seq).where(
            BrandChange.brand_id == brand.id, BrandChange.kind == "intents.changed"
        )
    ).all()


def _shown_to(html, intent_id):
    card = html.split(f'id="intent-{intent_id}"', 1)[1].split("</li>\n", 1)[0]
    match = re.search(r'<dd class="intent__seen">(.*?)</dd>', card, re.S)
    assert match, card
    return match.group(1).strip()


def test_shown_to_lists_only_brands_that_see_the_plan_as_the_brand_api_does(
    client, alice, db_session, plan, personalisation, brand
):
    personalisation(alice, AURORE)
    intent = plan(alice, brands=(AURORE, COTEAUX))

    html = client.get("/intents").get_data(as_text=True)

    assert _shown_to(html, intent.id) == "Aurore Automobiles"
    assert "Domaine des Coteaux: you have not given" in html
    assert f'href="/consents/{COTEAUX}#purpose-personalised-offers"' in html
    # The page agrees with what the brand API shows the brand.
    aurore = brand(AURORE)
    pairwise = relationship_with(db_session, alice.id, aurore).pairwise_id
    [item] = projection.consumer(db_session, aurore.id, pairwise, utcnow()).items
    assert [i["summary"] for i in item["intents"]] == ["a family estate car"]


def test_a_plan_is_changed_with_the_same_form_prefilled_and_the_brands_told(
    client, alice, db_session, plan, personalisation, brand
):
    personalisation(alice, AURORE)
    personalisation(alice, COTEAUX)
    intent = plan(alice, brands=(AURORE,))
    aurore_before = len(_intents_feed(db_session, brand(AURORE)))
    coteaux_before = len(_intents_feed(db_session, brand(COTEAUX)))

    form = client.get(f"/intents/{intent.id}/edit").get_data(as_text=True)
    assert 'value="a family estate car"' in form
    assert 'value="15000"' in form
    assert 'value="25000"' in form
    assert re.search(r'id="brands-aurore-automobiles"[^>]* checked', form)
    assert f'action="/intents/{intent.id}/edit"' in form

    response = submit(
        client,
        f"/intents/{intent.id}/edit",
        {
            "category": "buy-vehicle",
            "summary": "an electric van",
            "horizon": "6",
            "budget_min": "30000",
            "budget_max": "",
            "brands": [COTEAUX],
        },
        form_page=f"/intents/{intent.id}/edit",
    )

    assert response.status_code == 303
    [stored] = intents_in_db(db_session, alice)
    assert (stored.category, stored.summary, stored.budget_min, stored.budget_max) == (
        "buy-vehicle",
        "an electric van",
        30000,
        None,
    )
    assert [link.brand.slug for link in stored.brands] == [COTEAUX]
    assert stored.ends_on == intent.ends_on
    # Both brands hear of it: the one added, and the one that lost sight of it.
    assert len(_intents_feed(db_session, brand(AURORE))) == aurore_before + 1
    assert len(_intents_feed(db_session, brand(COTEAUX))) == coteaux_before + 1
    assert len(events_of(db_session, alice, "intent_changed")) == 1
    assert "Your plan is changed." in client.get("/intents").get_data(as_text=True)


def test_a_brand_without_the_consent_is_not_told_of_a_change(
    client, alice, db_session, plan, brand
):
    intent = plan(alice, brands=(AURORE,))

    submit(
        client,
        f"/intents/{intent.id}/edit",
        {"category": "gift", "summary": "", "horizon": "3", "brands": [AURORE]},
        form_page=f"/intents/{intent.id}/edit",
    )

    assert intents_in_db(db_session, alice)[0].category == "gift"
    assert _intents_feed(db_session, brand(AURORE)) == []


def test_another_persons_or_a_withdrawn_plan_cannot_be_edited(
    client, alice, db_session, plan, make_account
):
    bob = make_account("bob@example.com")
    theirs = plan(bob)
    mine = plan(alice)
    submit(client, f"/intents/{mine.id}/withdraw", {}, form_page="/intents")

    assert client.get(f"/intents/{theirs.id}/edit").status_code == 404
    assert client.get(f"/intents/{mine.id}/edit").status_code == 404


def test_a_withdrawal_can_be_undone_for_a_few_minutes(
    client, alice, db_session, plan, personalisation, brand
):
    personalisation(alice, AURORE)
    intent = plan(alice, brands=(AURORE, COTEAUX))
    submit(client, f"/intents/{intent.id}/withdraw", {}, form_page="/intents")
    html = client.get("/intents").get_data(as_text=True)
    assert f'action="/intents/{intent.id}/restore"' in html
    feed_before = len(_intents_feed(db_session, brand(AURORE)))

    response = submit(client, f"/intents/{intent.id}/restore", {}, form_page="/intents")

    assert response.status_code == 303
    [stored] = intents_in_db(db_session, alice)
    assert stored.withdrawn_at is None
    assert sorted(link.brand.slug for link in stored.brands) == [AURORE, COTEAUX]
    assert len(_intents_feed(db_session, brand(AURORE))) == feed_before + 1
    assert _intents_feed(db_session, brand(COTEAUX)) == []
    assert len(events_of(db_session, alice, "intent_restored")) == 1
    assert "Undone:" in client.get("/intents").get_data(as_text=True)


def test_an_old_withdrawal_cannot_be_undone(client, alice, db_session, plan):
    intent = plan(alice)
    submit(client, f"/intents/{intent.id}/withdraw", {}, form_page="/intents")
    [stored] = intents_in_db(db_session, alice)
    stored.withdrawn_at = utcnow() - timedelta(minutes=6)
    db_session.commit()

    html = client.get("/intents").get_data(as_text=True)
    assert f'action="/intents/{intent.id}/restore"' not in html
    response = submit(client, f"/intents/{intent.id}/restore", {}, form_page="/intents")

    assert response.status_code == 303
    assert intents_in_db(db_session, alice)[0].withdrawn_at is not None
    assert "can no longer be undone" in client.get("/intents").get_data(as_text=True)
