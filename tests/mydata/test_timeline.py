"""The "My data" timeline: every source, consent actions told apart, filters, keyset pages."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tests.consent.conftest import new_text
from tests.mydata.conftest import markers, next_link
from vrm_portal.accounts.history import record_event
from vrm_portal.accounts.models import Account, AccountEvent, EventKind
from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.catalogue import publish_version
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Notary
from vrm_portal.interests import service as interests
from vrm_portal.mydata import timeline
from vrm_portal.requests import service as requests
from vrm_portal.requests.models import ExportFormat

AURORE = "aurore-automobiles"
BERLINGOT = "maison-berlingot"


def text_of(client: FlaskClient, path: str = "/my-data/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return page.get_data(as_text=True)


def test_every_source_appears_with_its_label(
    client: FlaskClient,
    db_session: Session,
    alice: Account,
    brand: Callable[[str], Brand],
    consent: Callable[..., None],
    record: Callable[..., Any],
) -> None:
    consent(alice, AURORE, "personalised-offers")
    consent(alice, AURORE, "personalised-offers", "withdraw")
    interests.set_interests(db_session, alice, brand(AURORE), {"electric-vehicles"})
    intent = interests.state_intent(
        db_session,
        alice,
        interests.IntentInput(
            "replace-vehicle", "A small electric car", 6, None, None, frozenset({AURORE})
        ),
        utcnow().date(),
    )
    interests.withdraw_intent(db_session, alice, intent.id, utcnow())
    record(
        alice,
        brand(BERLINGOT),
        "Bought a box of pralines",
        reference="INV-42",
        amount={"value": "12.50", "currency": "EUR"},
    )
    requests.record_export(db_session, alice, ExportFormat.JSON, utcnow())
    requests.schedule_erasure(db_session, alice, utcnow())
    db_session.commit()

    html = text_of(client)

    for label in (
        "Consent given",
        "Consent withdrawn",
        "Interests changed",
        "Added: Electric vehicles",
        "Plan shared with brands",
        "Plan withdrawn",
        "A small electric car",
        "Purchase",
        "Bought a box of pralines",
        "Reference: INV-42",
        "Signed in",
        "Account created",
        "Data downloaded",
        "Account deletion requested",
        "until then you can keep your account",
    ):
        assert label in html, label
    assert "/consents/receipts/" in html
    assert " download>" in html
    assert f'href="/consents/{BERLINGOT}"' in html
    assert 'href="/my-data/access"' in html
    found = markers(client)
    assert found[0] == "request-erasure-scheduled"
    assert {
        "consent-granted",
        "consent-withdrawn",
        "interests_changed",
        "intent_stated",
        "intent_withdrawn",
        "interaction-purchase",
        "signed_in",
        "registered",
        "request-export-completed",
    } <= set(found)


def test_security_attempts_stay_on_the_security_page(
    client: FlaskClient, db_session: Session, alice: Account
) -> None:
    record_event(db_session, alice, EventKind.SIGN_IN_FAILED)
    record_event(db_session, alice, EventKind.IDENTITY_LINKED, provider="github")
    db_session.commit()

    found = markers(client)
    assert "sign_in_failed" not in found
    assert "identity_linked" in found
    assert "With GitHub" in text_of(client)


def test_given_renewed_withdrawn_and_expired_are_told_apart(
    client: FlaskClient,
    db_session: Session,
    notary: Notary,
    alice: Account,
    consent: Callable[..., None],
) -> None:
    now = utcnow()
    purpose = service.find_purpose(db_session, AURORE, "personalised-offers")
    consent(alice, AURORE, "personalised-offers", at=now - timedelta(days=10))
    publish_version(db_session, purpose, new_text())
    db_session.commit()
    consent(alice, AURORE, "personalised-offers", at=now - timedelta(days=9))  # renewed
    consent(
        alice,
        AURORE,
        "personalised-offers",
        "withdraw",
        at=now - timedelta(days=8),
        method=CollectionMethod.GPC_SIGNAL,
    )
    consent(alice, AURORE, "personalised-offers", at=now - timedelta(days=7))  # given again
    analytics = service.find_purpose(db_session, BERLINGOT, "analytics")
    consent(alice, BERLINGOT, "analytics", at=now - timedelta(days=analytics.validity_days + 5))
    assert service.expire_due(db_session, notary, now=now - timedelta(days=1)) == 1
    db_session.commit()
    consent(alice, BERLINGOT, "analytics", at=now)  # after an expiry: given, not renewed

    found = [m for m in markers(client, "/my-data/?type=consents")]
    assert found == [
        "consent-granted",  # analytics again
        "consent-expired",
        "consent-granted",  # personalised offers after the withdrawal
        "consent-withdrawn",
        "consent-renewed",
        "consent-granted",
        "consent-granted",  # analytics, long ago
    ]
    html = text_of(client, "/my-data/?type=consents")
    assert "Consent renewed" in html
    assert "Consent expired" in html
    assert "Global Privacy Control signal" in html
    assert "(version 2)" in html
    assert "Valid until" in html


def test_filters_by_brand_and_by_type(
    client: FlaskClient,
    db_session: Session,
    alice: Account,
    brand: Callable[[str], Brand],
    consent: Callable[..., None],
    record: Callable[..., Any],
) -> None:
    consent(alice, AURORE, "personalised-offers")
    consent(alice, BERLINGOT, "personalised-offers")
    interests.set_interests(db_session, alice, brand(BERLINGOT), {"workshops"})
    stated = interests.state_intent(
        db_session,
        alice,
        interests.IntentInput("gift", "A birthday box", 3, None, None, frozenset({BERLINGOT})),
        utcnow().date(),
    )
    interests.withdraw_intent(db_session, alice, stated.id, utcnow())
    interests.state_intent(
        db_session,
        alice,
        interests.IntentInput("buy-vehicle", "A van", 12, None, None, frozenset({AURORE})),
        utcnow().date(),
    )
    record(alice, brand(AURORE), "Service of the van", type=timeline_type("service-visit"))
    requests.record_export(db_session, alice, ExportFormat.CSV, utcnow())
    db_session.commit()

    berlingot = markers(client, f"/my-data/?brand={BERLINGOT}")
    assert sorted(berlingot) == sorted(
        ["consent-granted", "interests_changed", "intent_stated", "intent_withdrawn"]
    )
    html = text_of(client, f"/my-data/?brand={BERLINGOT}")
    assert "A birthday box" in html
    assert "A van" not in html
    assert "not shown when you choose one brand" in html

    aurore = markers(client, f"/my-data/?brand={AURORE}")
    assert sorted(aurore) == sorted(
        ["consent-granted", "intent_stated", "interaction-service-visit"]
    )
    assert set(markers(client, "/my-data/?type=interests")) == {
        "interests_changed",
        "intent_stated",
        "intent_withdrawn",
    }
    assert set(markers(client, "/my-data/?type=account")) == {"registered", "signed_in"}
    assert markers(client, "/my-data/?type=requests") == ["request-export-completed"]
    assert markers(client, "/my-data/?type=interactions") == ["interaction-service-visit"]
    assert markers(client, f"/my-data/?type=interests&brand={AURORE}") == ["intent_stated"]
    # Types that belong to no brand have nothing under a brand.
    assert markers(client, f"/my-data/?type=requests&brand={AURORE}") == []
    assert "Nothing matches these filters." in text_of(
        client, f"/my-data/?type=requests&brand={AURORE}"
    )


def timeline_type(value: str) -> Any:
    from vrm_portal.history.models import InteractionType

    return InteractionType(value)


def _walk(
    app: Flask,
    session: Session,
    account: Account,
    brands: list[Brand],
    per_page: int,
    **filters: Any,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every entry, walking older pages from the top, then newer pages back to the top."""
    with app.test_request_context():
        pages = []
        cursor = None
        while True:
            page = timeline.timeline_page(
                session,
                account,
                locale="en",
                brands=brands,
                cursor=cursor,
                per_page=per_page,
                **filters,
            )
            pages.append(page)
            assert len(page.entries) <= per_page
            if page.older is None:
                break
            assert len(page.entries) == per_page
            cursor = timeline.decode_cursor(page.older)
        down = [(e.at, e.source.value, e.id) for p in pages for e in p.entries]
        back: list[tuple[Any, ...]] = []
        page = pages[-1]
        while page.newer is not None:
            page = timeline.timeline_page(
                session,
                account,
                locale="en",
                brands=brands,
                cursor=timeline.decode_cursor(page.newer),
                per_page=per_page,
                **filters,
            )
            back = [(e.at, e.source.value, e.id) for e in page.entries] + back
        back += [(e.at, e.source.value, e.id) for p in pages[len(pages) - 1 :] for e in p.entries]
        return down, back


def test_keyset_pages_cover_every_entry_exactly_once_in_order(
    app: Flask,
    db_session: Session,
    alice: Account,
    brand: Callable[[str], Brand],
    consent: Callable[..., None],
    record: Callable[..., Any],
) -> None:
    tie = utcnow().replace(microsecond=0) - timedelta(days=3)
    for key in ("email-offers", "sms-offers", "personalised-offers", "analytics"):
        consent(alice, AURORE, key, at=tie)
    for n in range(5):
        record(alice, brand(BERLINGOT), f"Visit {n}", occurred_at=tie)
        record(alice, brand(AURORE), f"Later visit {n}", occurred_at=tie + timedelta(hours=n))
    for _ in range(3):
        db_session.add(
            AccountEvent(account_id=alice.id, kind="signed_in", created_at=tie, detail={})
        )
    requests.record_export(db_session, alice, ExportFormat.HTML, tie)
    requests.record_export(db_session, alice, ExportFormat.JSON, tie)
    db_session.commit()
    brands = [brand(AURORE), brand(BERLINGOT)]

    with app.test_request_context():
        everything = timeline.timeline_page(
            db_session, alice, locale="en", brands=brands, per_page=1000
        )
    keys = [(e.at, e.source.value, e.id) for e in everything.entries]
    assert everything.older is None
    assert everything.newer is None
    assert len(keys) == 4 + 10 + 3 + 2 + 2  # consents, interactions, events (+2 of sign-up), …
    assert keys == sorted(keys, reverse=True)
    assert sum(1 for k in keys if k[0] == tie) >= 4 + 5 + 3 + 2 + 1

    for per_page in (1, 3, 4, 7):
        down, back = _walk(app, db_session, alice, brands, per_page)
        assert down == keys, per_page
        assert back == keys, per_page
    down, back = _walk(app, db_session, alice, brands, 2, brand=brands[1])
    assert len(down) == 5
    assert down == back


def test_pagination_links_keep_the_filters(
    client: FlaskClient,
    alice: Account,
    brand: Callable[[str], Brand],
    record: Callable[..., Any],
) -> None:
    start = utcnow() - timedelta(days=100)
    for n in range(30):
        record(alice, brand(AURORE), f"Visit number {n}", occurred_at=start + timedelta(days=n))
    record(alice, brand(BERLINGOT), "Someone else's shop")

    path: str | None = f"/my-data/?brand={AURORE}&type=interactions"
    seen: list[str] = []
    while path:
        html = text_of(client, path)
        seen += re.findall(r"Visit number (\d+)", html)
        assert "Someone else" not in html
        path = next_link(html)
        if path:
            assert f"brand={AURORE}" in path
            assert "type=interactions" in path
    assert seen == [str(n) for n in reversed(range(30))]
    newer = next_link(html, "prev")
    assert newer
    assert f"brand={AURORE}" in newer
    assert "Visit number 29" in text_of(client, newer)


def test_another_consumers_entries_never_appear(
    client: FlaskClient,
    db_session: Session,
    make_account: Callable[..., Account],
    alice: Account,
    brand: Callable[[str], Brand],
    consent: Callable[..., None],
    record: Callable[..., Any],
) -> None:
    bob = make_account("bob@example.com")
    consent(bob, AURORE, "personalised-offers")
    interests.set_interests(db_session, bob, brand(AURORE), {"new-models"})
    record(bob, brand(AURORE), "Bob's test drive")
    requests.record_export(db_session, bob, ExportFormat.JSON, utcnow())
    record_event(db_session, bob, EventKind.PASSWORD_CHANGED)
    db_session.commit()

    found = markers(client)
    assert sorted(found) == ["registered", "signed_in"]
    assert "Bob" not in text_of(client)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("brand=no-such-brand", "There is no brand “no-such-brand”"),
        ("brand=" + "x" * 500, "There is no brand"),
        ("type=gossip", "There is no type “gossip”"),
        ("cursor=garbage", "This page link is incomplete or out of date"),
        ("cursor=%00%FF", "This page link is incomplete or out of date"),
        ("cursor=" + "A" * 5000, "This page link is incomplete or out of date"),
        (
            "cursor=" + base64.urlsafe_b64encode(b"o|2026-01-01T00:00:00|c|1").decode(),
            "incomplete or out of date",
        ),
        (
            "cursor=" + base64.urlsafe_b64encode(b"o|2026-01-01T00:00:00+00:00|z|1").decode(),
            "incomplete or out of date",
        ),
        (
            "cursor=" + base64.urlsafe_b64encode(b"x|2026-01-01T00:00:00+00:00|c|1").decode(),
            "incomplete or out of date",
        ),
        (
            "cursor="
            + base64.urlsafe_b64encode(
                b"o|2026-01-01T00:00:00+00:00|c|99999999999999999999"
            ).decode(),
            "incomplete or out of date",
        ),
    ],
)
def test_bad_parameters_are_ignored_and_said_so(
    client: FlaskClient, alice: Account, query: str, message: str
) -> None:
    page = client.get(f"/my-data/?{query}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert message in html
    assert 'data-marker="signed_in"' in html


def test_a_cursor_far_in_the_past_or_future_is_harmless(
    client: FlaskClient, alice: Account
) -> None:
    older = timeline.encode_cursor(
        timeline.Cursor(
            timeline.Position(utcnow() - timedelta(days=9000), timeline.Source.CONSENT, 1), True
        )
    )
    html = text_of(client, f"/my-data/?cursor={older}")
    assert "There is nothing further back." in html
    assert "Newest entries" in html
    newer = timeline.encode_cursor(
        timeline.Cursor(
            timeline.Position(utcnow() + timedelta(days=9000), timeline.Source.CONSENT, 1), False
        )
    )
    assert "signed_in" in markers(client, f"/my-data/?cursor={newer}")


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    for path in ("/my-data/", "/my-data/access"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_the_nav_marks_the_page(client: FlaskClient, alice: Account) -> None:
    html = text_of(client)
    assert re.search(r'<a href="/my-data/" aria-current="page">My data</a>', html)


@pytest.fixture
def statements(connection: Connection) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", count)
    yield seen
    event.remove(connection, "before_cursor_execute", count)


def test_a_page_costs_the_same_queries_whatever_the_history(
    client: FlaskClient,
    db_session: Session,
    alice: Account,
    brand: Callable[[str], Brand],
    consent: Callable[..., None],
    record: Callable[..., Any],
    statements: list[str],
) -> None:
    def page_queries() -> int:
        statements.clear()
        text_of(client)
        return len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))])

    consent(alice, AURORE, "personalised-offers")
    interests.set_interests(db_session, alice, brand(AURORE), {"electric-vehicles"})
    record(alice, brand(AURORE))
    requests.record_export(db_session, alice, ExportFormat.JSON, utcnow())
    db_session.commit()
    small = page_queries()
    for n in range(60):
        record(alice, brand(BERLINGOT), f"Visit {n}", occurred_at=utcnow() - timedelta(minutes=n))
    for key in ("email-offers", "sms-offers", "analytics"):
        consent(alice, BERLINGOT, key)
    interests.set_interests(db_session, alice, brand(BERLINGOT), {"workshops"})
    db_session.commit()
    large = page_queries()
    assert large <= small + 1
    assert small <= 14  # the session and account, then the timeline's few queries
