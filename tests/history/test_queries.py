"""``interactions_of``: one consumer's interactions, newest first, a page at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vrm_portal.history.queries import interactions_of


@pytest.fixture
def bob(make_account):
    return make_account("bob@example.com")


def test_nothing_recorded_is_one_empty_page(db_session, bob, catalogue):
    page = interactions_of(db_session, bob.id, None, page=1)

    assert (page.items, page.page, page.pages, page.total) == ([], 1, 1, 0)


def test_without_a_brand_every_brand_is_listed(db_session, bob, make_account, brand, record):
    carol = make_account("carol@example.com")
    record(bob, brand("maison-berlingot"), "Pralines", ago=timedelta(days=2))
    record(bob, brand("aurore-automobiles"), "Test drive", ago=timedelta(days=1))
    record(carol, brand("aurore-automobiles"), "Carol's test drive")

    page = interactions_of(db_session, bob.id, None, page=1)

    assert [(i.summary, i.brand.slug) for i in page.items] == [
        ("Test drive", "aurore-automobiles"),
        ("Pralines", "maison-berlingot"),
    ]
    assert page.total == 2


def test_pages_count_and_slice(db_session, bob, brand, record):
    berlingot = brand("maison-berlingot")
    for n in range(7):
        record(bob, berlingot, f"#{n}", ago=timedelta(minutes=n + 1))

    pages = [
        interactions_of(db_session, bob.id, berlingot.id, page=n, per_page=3) for n in (1, 2, 3)
    ]

    assert [[i.summary for i in p.items] for p in pages] == [
        ["#0", "#1", "#2"],
        ["#3", "#4", "#5"],
        ["#6"],
    ]
    assert {(p.pages, p.total) for p in pages} == {(3, 7)}
    assert [p.page for p in pages] == [1, 2, 3]


@pytest.mark.parametrize("wanted", [0, -3, 4, 10**9])
def test_a_page_that_does_not_exist_gives_the_first(db_session, bob, brand, record, wanted):
    berlingot = brand("maison-berlingot")
    for n in range(7):
        record(bob, berlingot, f"#{n}", ago=timedelta(minutes=n + 1))

    page = interactions_of(db_session, bob.id, berlingot.id, page=wanted, per_page=3)

    assert page.page == 1
    assert [i.summary for i in page.items] == ["#0", "#1", "#2"]
