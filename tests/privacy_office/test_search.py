"""The consent log search: filters, keyset pages, the reason, and what the consumer sees."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import timedelta

from sqlalchemy import select

from tests.conftest import csrf_token, sign_in
from vrm_portal.audit.models import StaffAction
from vrm_portal.brands.models import BrandRelationship
from vrm_portal.clock import utcnow
from vrm_portal.consent.models import ConsentEvent
from vrm_portal.history.models import StaffAccess
from vrm_portal.privacy_office import search
from vrm_portal.privacy_office.search import LogFilters


def _seqs(page) -> list[int]:
    return [row.seq for row in page.rows]


def test_keyset_pages_walk_the_whole_log_both_ways(db_session, history):
    all_seqs = list(db_session.scalars(select(ConsentEvent.seq).order_by(ConsentEvent.seq.desc())))
    assert len(all_seqs) == 7
    filters = LogFilters()
    first = search.search(db_session, filters, per_page=3)
    assert _seqs(first) == all_seqs[:3]
    assert first.newer is None
    assert first.total == 7
    second = search.search(db_session, filters, before=first.older, per_page=3)
    assert _seqs(second) == all_seqs[3:6]
    third = search.search(db_session, filters, before=second.older, per_page=3)
    assert _seqs(third) == all_seqs[6:]
    assert third.older is None
    back = search.search(db_session, filters, after=third.newer, per_page=3)
    assert _seqs(back) == all_seqs[3:6]
    last = search.search(db_session, filters, last=True, per_page=3)
    assert _seqs(last) == all_seqs[4:]
    assert last.older is None
    assert last.newer == all_seqs[4]


def test_filters_by_subject_method_action_version_and_dates(db_session, history):
    alice, bob = history["alice"], history["bob"]
    mine = search.search(db_session, LogFilters(subject_key=alice.subject_key))
    assert {row.subject_key for row in mine.rows} == {alice.subject_key}
    assert mine.total == 4
    gpc = search.search(db_session, LogFilters(method="gpc-signal"))
    assert [(r.subject_key, r.action, r.method) for r in gpc.rows] == [
        (bob.subject_key, "withdrawn", "gpc-signal")
    ]
    withdrawn = search.search(db_session, LogFilters(action="withdrawn"))
    assert withdrawn.total == 2
    versioned = search.search(
        db_session, LogFilters(brand="maison-berlingot", purpose="sms-offers", version=1)
    )
    assert versioned.total == 4
    assert search.count(db_session, LogFilters(brand="maison-berlingot", version=2)) == 0
    tomorrow = utcnow() + timedelta(days=1)
    assert search.count(db_session, LogFilters(since=tomorrow)) == 0
    assert search.count(db_session, LogFilters(until=tomorrow)) == 7


def test_a_pairwise_id_names_its_consumer(db_session, history):
    bob = history["bob"]
    pairwise = db_session.scalar(
        select(BrandRelationship.pairwise_id).where(BrandRelationship.account_id == bob.id)
    )
    found = search.subject_for_pairwise_id(db_session, pairwise)
    assert found is not None
    assert found[0] == bob.subject_key


def test_searching_by_email_needs_a_reason_and_is_recorded(dpo, history, db_session, client):
    _account, browser = dpo
    alice = history["alice"]
    refused = browser.get("/office/log", query_string={"email": "alice@example.com"})
    assert refused.status_code == 422
    assert "Give the reason for this look-up." in refused.get_data(as_text=True)
    assert alice.subject_key not in refused.get_data(as_text=True)
    assert db_session.scalars(select(StaffAccess)).first() is None

    page = browser.get(
        "/office/log", query_string={"email": "alice@example.com", "reason": "Ticket DPO-42"}
    )
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "4 events found" in text
    assert alice.subject_key in text
    assert history["bob"].subject_key not in text
    rows = db_session.scalars(select(StaffAccess)).all()
    assert [(r.subject_key, r.kind, r.reason) for r in rows] == [
        (alice.subject_key, "search", "Ticket DPO-42")
    ]
    assert "alice@example.com" not in json.dumps(rows[0].detail)
    trail = db_session.scalars(select(StaffAction)).all()
    assert [(t.action, t.reason) for t in trail] == [("consent_log.searched", "Ticket DPO-42")]

    # Alice sees it under "Who read my data".
    sign_in(client, "alice@example.com")
    mine = client.get("/my-data/access").get_data(as_text=True)
    assert "The privacy office of the portal, on " in mine
    assert "reason given: Ticket DPO-42" in mine
    # Bob was not shown: he sees nothing.
    bob_browser = client.application.test_client()
    sign_in(bob_browser, "bob@example.com")
    assert "Ticket DPO-42" not in bob_browser.get("/my-data/access").get_data(as_text=True)


def test_bad_filters_get_clear_messages(dpo, history):
    _account, browser = dpo
    cases = [
        ({"email": "nobody@example.com"}, "No account has this email address."),
        ({"email": "not-an-address"}, "Enter an email address like name@example.com."),
        ({"version": "2"}, "choose the brand and the purpose too"),
        ({"purpose": "sms-offers"}, "choose the brand too"),
        ({"brand": "no-such-brand"}, "Choose a brand from the list."),
        (
            {"since": "2026-02-01", "until": "2026-01-01"},
            "The end date comes before the start date.",
        ),
        ({"since": "yesterday"}, "Not a valid date value."),
        ({"pairwise_id": "0000"}, "No consumer has this pairwise id."),
        ({"method": "carrier-pigeon"}, "Not a valid choice."),
    ]
    for args, message in cases:
        response = browser.get("/office/log", query_string={**args, "reason": "audit"})
        assert response.status_code == 422, args
        assert message in response.get_data(as_text=True), args


def test_paging_links_keep_the_filters(dpo, history, db_session, notary, change):
    from tests.consent.conftest import purpose_of
    from vrm_portal.consent import service

    alice = history["alice"]
    analytics = purpose_of(db_session, "domaine-des-coteaux", "analytics")
    for _ in range(26):
        service.grant(db_session, notary, alice, analytics, shown_version=1, change=change())
        service.withdraw(db_session, notary, alice, analytics, change=change())
    db_session.commit()
    _account, browser = dpo
    args = {"brand": "domaine-des-coteaux", "reason": "audit"}
    text = browser.get("/office/log", query_string=args).get_data(as_text=True)
    assert "52 events found" in text
    assert text.count('data-label="Subject key"') == 50
    older = re.search(r'href="(/office/log\?[^"]*before=\d+[^"]*)" rel="next"', text)
    assert older, text
    link = html.unescape(older.group(1))
    assert "brand=domaine-des-coteaux" in link
    assert "reason=audit" in link
    second = browser.get(link).get_data(as_text=True)
    assert second.count('data-label="Subject key"') == 2
    assert "Newer events" in second
    assert "Older events" not in second


def test_exports_stream_the_results_and_are_recorded(dpo, history, db_session):
    _account, browser = dpo
    alice = history["alice"]
    args = {"subject": alice.subject_key, "reason": "Regulator letter 7"}
    token = csrf_token(browser, f"/office/log?subject={alice.subject_key}&reason=x")
    response = browser.post("/office/log/export/csv", query_string=args, data={"csrf_token": token})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:4] == ["seq", "event_id", "occurred_at", "subject_key"]
    assert {row[3] for row in rows[1:]} == {alice.subject_key}
    assert len(rows) == 5
    document = json.loads(
        browser.post(
            "/office/log/export/json", query_string=args, data={"csrf_token": token}
        ).get_data(as_text=True)
    )
    assert len(document["events"]) == 4
    assert document["filters"] == {"subject_key": alice.subject_key}
    exports = db_session.scalars(
        select(StaffAccess).where(StaffAccess.kind == "export").order_by(StaffAccess.id)
    ).all()
    assert [(e.subject_key, e.reason, e.detail["format"]) for e in exports] == [
        (alice.subject_key, "Regulator letter 7", "csv"),
        (alice.subject_key, "Regulator letter 7", "json"),
    ]
    refused = browser.post("/office/log/export/csv", query_string=args, data={})
    assert refused.status_code != 200 or "text/csv" not in refused.content_type


def test_csv_cells_cannot_run_as_formulas(db_session, history):
    from vrm_portal.privacy_office.search import EventRow, _values
    from vrm_portal.requests.export_formats import csv_cell

    row = EventRow(1, "=cmd", utcnow(), "+x", "b", "p", 1, "granted", "@m", "-a")
    assert [csv_cell(v) for v in _values(row)][1] == "'=cmd"
