"""Who read my data: the API's access records that covered the consumer, per brand."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import BrandApi, brand_api
from tests.mydata.conftest import next_link
from vrm_portal.accounts.models import Account
from vrm_portal.brands import clients
from vrm_portal.brands.models import Brand, BrandChange, BrandRelationship
from vrm_portal.clock import utcnow
from vrm_portal.history.models import AccessRecord

__all__ = ["brand_api"]

AURORE = "aurore-automobiles"
BERLINGOT = "maison-berlingot"


def kinds(html: str) -> list[str]:
    return re.findall(r'<tr data-kind="([^"]+)"', html)


def page(client: FlaskClient, path: str = "/my-data/access") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def relationship(session: Session, account: Account, brand: Brand) -> BrandRelationship:
    found = session.scalar(
        select(BrandRelationship).where(
            BrandRelationship.account_id == account.id, BrandRelationship.brand_id == brand.id
        )
    )
    assert found is not None
    return found


def test_reads_through_the_real_api_that_covered_me_and_only_those(
    client: FlaskClient,
    db_session: Session,
    make_account: Callable[..., Account],
    alice: Account,
    brand: Callable[[str], Brand],
    consent: Callable[..., None],
    brand_api: Callable[..., BrandApi],
) -> None:
    consent(alice, AURORE, "personalised-offers")
    bob = make_account("bob@example.com")
    consent(bob, AURORE, "personalised-offers")
    aurore = brand(AURORE)
    mine = relationship(db_session, alice, aurore)
    api = brand_api(AURORE)

    assert api.get(f"/api/v1/consumers/{mine.pairwise_id}").status_code == 200
    first = api.get("/api/v1/consumers?limit=1")
    assert first.json["items"][0]["consumer_id"] == mine.pairwise_id
    second = api.get(f"/api/v1/consumers?limit=1&cursor={first.json['next_cursor']}")
    assert second.json["items"][0]["consumer_id"] != mine.pairwise_id
    feed = api.get("/api/v1/changes?limit=1")
    assert feed.json["items"][0]["consumer_id"] == mine.pairwise_id
    later = api.get(f"/api/v1/changes?after={feed.json['next_cursor']}")
    assert all(i["consumer_id"] != mine.pairwise_id for i in later.json["items"])
    assert later.json["items"]

    html = page(client)
    assert sorted(kinds(html)) == ["changes", "consumer", "consumers"]
    assert "Looked you up" in html
    assert "Read a page of its customer list that included you" in html
    assert "Read its change feed, which included changes about you" in html
    assert "CRM" in html
    assert api.client_id in html
    assert "consumers:read" in html
    assert "changes:read" in html
    assert "Your consents to this brand" in html
    assert "Your interests" in html
    assert "at least one consumer of that page" in html
    assert re.search(r"Aurore Automobiles</a></th>\s*<td[^>]*>3</td>", html)

    # Bob sees the second list page and the later feed page, not Alice's.
    bob_browser = client.application.test_client()
    from tests.conftest import sign_in

    sign_in(bob_browser, "bob@example.com")
    assert sorted(kinds(page(bob_browser))) == ["changes", "consumers"]


def test_recorded_reads_by_range_per_brand(
    client: FlaskClient,
    db_session: Session,
    alice: Account,
    brand: Callable[[str], Brand],
    consent: Callable[..., None],
) -> None:
    consent(alice, AURORE, "personalised-offers")
    consent(alice, BERLINGOT, "analytics")
    aurore, berlingot = brand(AURORE), brand(BERLINGOT)
    at_aurore = relationship(db_session, alice, aurore)
    at_berlingot = relationship(db_session, alice, berlingot)
    shop = clients.create_client(db_session, berlingot, ["consumers:read"], utcnow(), "Shop")
    now = utcnow()
    for known in (at_aurore, at_berlingot):
        known.created_at = now - timedelta(days=30)

    def read(brand: Brand, kind: str, first: int, last: int, ago: int, **extra: Any) -> None:
        db_session.add(
            AccessRecord(
                brand_id=brand.id,
                client_pk=shop.client.id if brand is berlingot else None,
                at=now - timedelta(minutes=ago),
                kind=kind,
                scope="changes:read" if kind == "changes" else "consumers:read",
                first_id=first,
                last_id=last,
                count=extra.get("count", 1),
                fields=extra.get("fields", ["consents"]),
            )
        )

    rid = at_berlingot.id
    read(berlingot, "consumers", rid - 5, rid + 5, 1, count=7, fields=["profile.given_name"])
    read(berlingot, "consumers", rid + 1, rid + 50, 2)  # after Alice: not her
    read(berlingot, "consumer", rid, rid, 3)
    read(berlingot, "consumer", at_aurore.id, at_aurore.id, 4)  # another brand's id
    read(aurore, "consumers", at_aurore.id, at_aurore.id + 10, 5)  # client since deleted
    feed = db_session.scalars(
        select(BrandChange.seq).where(BrandChange.pairwise_id == at_berlingot.pairwise_id)
    ).all()
    assert feed
    read(berlingot, "changes", feed[0], feed[-1], 6, fields=["consent"])
    read(berlingot, "changes", feed[-1] + 1, feed[-1] + 100, 7)  # nothing of hers
    # Before her relationship existed, a read could not include her.
    read(berlingot, "consumers", rid - 5, rid + 5, 60 * 24 * 365)
    db_session.commit()

    html = page(client)
    assert kinds(html) == ["consumers", "consumer", "consumers", "changes"]
    assert "Shop" in html
    assert "An application since deleted" in html
    assert "Given name" in html
    assert "7 entries in this read" in html
    assert "Notices of changes" in html

    only = page(client, f"/my-data/access?brand={BERLINGOT}")
    assert kinds(only) == ["consumers", "consumer", "changes"]
    assert "Reads by Maison Berlingot" in only


def test_pages_keep_the_brand_and_bad_parameters_are_harmless(
    client: FlaskClient,
    db_session: Session,
    alice: Account,
    brand: Callable[[str], Brand],
    consent: Callable[..., None],
) -> None:
    consent(alice, AURORE, "personalised-offers")
    aurore = brand(AURORE)
    known = relationship(db_session, alice, aurore)
    rid = known.id
    now = utcnow()
    known.created_at = now - timedelta(days=1)
    for n in range(30):
        db_session.add(
            AccessRecord(
                brand_id=aurore.id,
                client_pk=None,
                at=now - timedelta(seconds=n),
                kind="consumer",
                scope="consumers:read",
                first_id=rid,
                last_id=rid,
                count=1,
                fields=[],
            )
        )
    db_session.commit()

    first = page(client, f"/my-data/access?brand={AURORE}")
    assert len(kinds(first)) == 25
    assert "Page 1 of 2" in first
    second = next_link(first)
    assert second
    assert f"brand={AURORE}" in second
    assert "page=2" in second
    assert len(kinds(page(client, second))) == 5

    for query in ("page=0", "page=-1", "page=abc", "page=99999999", "page=%C2%B2"):
        assert "Page 1 of 2" in page(client, f"/my-data/access?{query}")
    unknown = page(client, "/my-data/access?brand=nope")
    assert "There is no brand “nope”" in unknown
    assert len(kinds(unknown)) == 25


def test_empty_states(client: FlaskClient, alice: Account, consent: Callable[..., None]) -> None:
    html = page(client)
    assert "No brand knows you yet" in html
    assert "No brand has read your data through our API yet." in html
    consent(alice, AURORE, "personalised-offers")
    html = page(client)
    assert "Never" in html
    assert "has not read your data" in page(client, f"/my-data/access?brand={AURORE}")
