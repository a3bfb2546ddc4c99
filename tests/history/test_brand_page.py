"""The consumer's brand page shows what that brand recorded about them, and only that."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest

from tests.conftest import sign_in
from vrm_portal.history.models import InteractionType

BERLINGOT = "/consents/maison-berlingot"
AURORE = "/consents/aurore-automobiles"


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def section(html: str) -> str:
    """The "What … recorded" section of a brand page."""
    match = re.search(r'<section class="card card--wide recorded".*?</section>', html, re.S)
    assert match, "no recorded section"
    return match.group(0)


def rows(html: str) -> list[list[str]]:
    """The recorded interactions, row by row, as the text of their cells."""
    found = re.findall(r'<tr class="recorded__row">(.*?)</tr>', section(html), re.S)
    return [
        [unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell))).strip() for cell in cells]
        for cells in (re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in found)
    ]


def summaries(html: str) -> list[str]:
    return [cells[2] for cells in rows(html)]


# ---- what is shown ----------------------------------------------------------------------


def test_a_brand_that_recorded_nothing_says_so(client, alice):
    part = section(html_of(client.get(BERLINGOT)))

    assert '<h2 id="recorded-title">What Maison Berlingot recorded</h2>' in part
    assert "Maison Berlingot has not recorded anything yet." in part
    assert "<table" not in part
    assert "pagination" not in part


def test_interactions_are_listed_newest_first(client, alice, brand, record):
    berlingot = brand("maison-berlingot")
    record(alice, berlingot, "A month ago", ago=timedelta(days=30))
    record(alice, berlingot, "An hour ago", ago=timedelta(hours=1))
    record(alice, berlingot, "A week ago", ago=timedelta(days=7))
    same_time = datetime(2025, 1, 1, 12, tzinfo=UTC)
    record(alice, berlingot, "Same time, recorded first", occurred_at=same_time)
    record(alice, berlingot, "Same time, recorded second", occurred_at=same_time)

    html = html_of(client.get(BERLINGOT))

    assert summaries(html) == [
        "An hour ago",
        "A week ago",
        "A month ago",
        "Same time, recorded second",
        "Same time, recorded first",
    ]


def test_an_interaction_shows_its_date_type_summary_amount_and_reference(
    client, alice, brand, record
):
    record(
        alice,
        brand("maison-berlingot"),
        "Bought a box of pralines",
        type=InteractionType.PURCHASE,
        occurred_at=datetime(2026, 3, 14, 15, 9, tzinfo=UTC),
        reference="ORD-2026-0042",
        amount={"value": "12.50", "currency": "EUR"},
        channel="shop",
        details={"store": "Lyon", "items": 3, "gift": True},
    )

    html = html_of(client.get(BERLINGOT))

    [[when, kind, summary, amount, reference]] = rows(html)
    assert '<time datetime="2026-03-14T15:09:00+00:00">' in section(html)
    assert "2026" in when
    assert kind == "Purchase"
    assert summary == "Bought a box of pralines"
    assert amount == "€12.50"
    assert reference == "ORD-2026-0042"
    assert '<th scope="col">Amount</th>' in section(html)


def test_missing_amount_and_reference_are_announced_as_none(client, alice, brand, record):
    record(alice, brand("maison-berlingot"), "Visited the shop", type=InteractionType.SERVICE_VISIT)

    [[_when, kind, _summary, amount, reference]] = rows(html_of(client.get(BERLINGOT)))

    assert kind == "Service visit"
    assert amount == reference == "—None"


def test_every_type_has_a_readable_label(client, alice, brand, record):
    berlingot = brand("maison-berlingot")
    labels = {
        InteractionType.PURCHASE: "Purchase",
        InteractionType.SERVICE_VISIT: "Service visit",
        InteractionType.MESSAGE_SENT: "Message sent",
        InteractionType.SUPPORT_CASE: "Support case",
        InteractionType.EVENT_ATTENDED: "Event attended",
        InteractionType.TEST_DRIVE: "Test drive",
    }
    for days, kind in enumerate(labels, start=1):
        record(alice, berlingot, f"A {kind.value}", type=kind, ago=timedelta(days=days))

    table = rows(html_of(client.get(BERLINGOT)))

    assert [cells[1] for cells in table] == list(labels.values())


def test_amounts_follow_the_readers_language(client, make_account, brand, record):
    account = make_account("claire@example.com", locale="fr")
    sign_in(client, "claire@example.com")
    record(
        account,
        brand("maison-berlingot"),
        "Achat",
        amount={"value": "1234.5", "currency": "EUR"},
    )

    [cells] = rows(html_of(client.get(BERLINGOT)))

    assert re.fullmatch(r"1\s234,50\s€", cells[3]), cells[3]


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ({"value": "not a number", "currency": "EUR"}, "not a number EUR"),
        ({"value": "NaN", "currency": "EUR"}, "NaN EUR"),
        ({"value": "10", "currency": "euros"}, "10 euros"),
        ({"value": "1e40", "currency": "EUR"}, "1e40 EUR"),
        ({"value": 7, "currency": "USD"}, "$7.00"),
        ({"currency": "EUR"}, "—None"),
        ("12 EUR", "—None"),
    ],
)
def test_an_odd_amount_never_breaks_the_page(client, alice, brand, record, amount, shown):
    record(alice, brand("maison-berlingot"), "Odd", amount=amount)

    [cells] = rows(html_of(client.get(BERLINGOT)))

    assert cells[3] == shown


def test_a_type_the_page_does_not_know_is_shown_as_recorded(
    client, alice, brand, record, db_session
):
    interaction = record(alice, brand("maison-berlingot"), "Something new")
    interaction.type = "newsletter-opened"
    db_session.commit()

    [cells] = rows(html_of(client.get(BERLINGOT)))

    assert cells[1] == "newsletter-opened"


# ---- only the consumer's own, only this brand's -----------------------------------------


def test_another_consumers_interactions_are_not_shown(client, alice, make_account, brand, record):
    bob = make_account("bob@example.com")
    berlingot = brand("maison-berlingot")
    record(bob, berlingot, "Bob's secret purchase")
    record(alice, berlingot, "Alice's purchase")

    html = html_of(client.get(BERLINGOT))

    assert summaries(html) == ["Alice's purchase"]
    assert "secret" not in html


def test_another_brands_interactions_are_not_shown(client, alice, brand, record):
    record(alice, brand("aurore-automobiles"), "Test drive of the new model")
    record(alice, brand("maison-berlingot"), "Bought pralines")

    berlingot = html_of(client.get(BERLINGOT))
    aurore = html_of(client.get(AURORE))

    assert summaries(berlingot) == ["Bought pralines"]
    assert summaries(aurore) == ["Test drive of the new model"]
    assert "What Aurore Automobiles recorded" in aurore


# ---- pagination -------------------------------------------------------------------------


@pytest.fixture
def many(alice, brand, record) -> list[str]:
    """45 interactions of Alice with Maison Berlingot; their summaries, newest first."""
    berlingot = brand("maison-berlingot")
    for n in range(45):
        record(alice, berlingot, f"Interaction {n:02d}", ago=timedelta(hours=n + 1))
    return [f"Interaction {n:02d}" for n in range(45)]


def test_interactions_are_paginated_twenty_by_twenty(client, many):
    first = html_of(client.get(BERLINGOT))
    second = html_of(client.get(f"{BERLINGOT}?page=2"))
    third = html_of(client.get(f"{BERLINGOT}?page=3"))

    assert summaries(first) == many[:20]
    assert summaries(second) == many[20:40]
    assert summaries(third) == many[40:]
    assert "Page 1 of 3" in section(first)
    assert f'href="{BERLINGOT}?page=2#recorded" rel="next"' in section(first)
    assert 'rel="prev"' not in section(first)
    assert f'href="{BERLINGOT}?page=1#recorded" rel="prev"' in section(second)
    assert f'href="{BERLINGOT}?page=3#recorded" rel="next"' in section(second)
    assert 'rel="next"' not in section(third)
    assert "Page 3 of 3" in section(third)


@pytest.mark.parametrize(
    "page", ["0", "-1", "abc", "", "1.5", "²", "4", "999999", "99999999999999999999", "1e3"]
)
def test_a_bad_page_number_shows_the_first_page(client, many, page):
    html = html_of(client.get(f"{BERLINGOT}?page={page}"))

    assert summaries(html) == many[:20]
    assert "Page 1 of 3" in section(html)


def test_a_page_number_on_a_brand_with_nothing_recorded_is_harmless(client, alice):
    html = html_of(client.get(f"{BERLINGOT}?page=5"))
    assert "Maison Berlingot has not recorded anything yet." in section(html)
