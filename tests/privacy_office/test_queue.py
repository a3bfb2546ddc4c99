"""The data-request queue: one-month deadlines, retries, and requests received on paper."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import csrf_token, submit
from vrm_portal.accounts.models import Account
from vrm_portal.audit.models import StaffAction
from vrm_portal.clock import utcnow
from vrm_portal.history.models import StaffAccess
from vrm_portal.privacy_office import queue
from vrm_portal.requests import service as requests_service
from vrm_portal.requests.models import DataRequest


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2026, 1, 15), date(2026, 2, 15)),
        (date(2026, 1, 31), date(2026, 2, 28)),
        (date(2028, 1, 31), date(2028, 2, 29)),
        (date(2026, 3, 31), date(2026, 4, 30)),
        (date(2026, 12, 31), date(2027, 1, 31)),
        (date(2026, 2, 28), date(2026, 3, 28)),
    ],
)
def test_one_month_as_the_regulation_counts_it(received, due):
    assert queue.add_one_month(received) == due
    moment = datetime.combine(received, datetime.min.time(), UTC) + timedelta(hours=23)
    assert queue.due_date(moment) == due


def _erasure(db_session, account: Account, *, received: datetime, failures: int = 0):
    request = requests_service.schedule_erasure(db_session, account, received, grace=timedelta(0))
    if failures:
        request.detail = {"failed_attempts": failures, "last_error": "OperationalError"}
    db_session.commit()
    return request


def test_the_queue_shows_deadlines_overdue_requests_and_failures(dpo, db_session, make_account):
    old = make_account("old@example.com")
    new = make_account("new@example.com")
    late = _erasure(db_session, old, received=utcnow() - timedelta(days=40), failures=2)
    fresh = _erasure(db_session, new, received=utcnow())
    _account, browser = dpo
    page = browser.get("/office/requests").get_data(as_text=True)
    assert page.index(late.reference[:8]) < page.index(fresh.reference[:8])
    assert "office-overdue" in page
    assert page.count('<span class="tag tag--error">Overdue</span>') == 1
    assert "OperationalError" in page
    assert "Retry now" in page
    front = browser.get("/office/").get_data(as_text=True)
    assert "1 open request is past its one-month deadline." in front
    only_exports = browser.get("/office/requests", query_string={"type": "export"})
    assert late.reference[:8] not in only_exports.get_data(as_text=True)
    odd = browser.get("/office/requests", query_string={"type": "nonsense", "status": "x"})
    assert odd.status_code == 200
    assert "Unknown request type" in odd.get_data(as_text=True)
    detail = browser.get(f"/office/requests/{late.reference}").get_data(as_text=True)
    assert "last error: OperationalError" in detail


def test_retry_now_runs_the_erasure_job(dpo, db_session, make_account, mailbox):
    old = make_account("old@example.com")
    old_id = old.id
    late = _erasure(db_session, old, received=utcnow() - timedelta(days=3), failures=1)
    _account, browser = dpo
    token = csrf_token(browser, f"/office/requests/{late.reference}")
    response = browser.post(f"/office/requests/{late.reference}/retry", data={"csrf_token": token})
    assert response.status_code == 302
    db_session.expire_all()
    request = db_session.get(DataRequest, late.id)
    assert request.status == "completed"
    assert db_session.get(Account, old_id) is None
    assert mailbox.wait_for("old@example.com")["Subject"] == "Your account has been deleted"
    assert db_session.scalars(
        select(StaffAction.action).where(StaffAction.action == "data_request.erasure_retried")
    ).one()
    again = browser.post(f"/office/requests/{late.reference}/retry", data={"csrf_token": token})
    assert again.status_code == 302
    assert "Only a scheduled erasure can be retried." in browser.get(again.location).get_data(
        as_text=True
    )


def test_an_erasure_received_by_post_is_recorded_run_and_told(
    dpo, db_session, make_account, mailbox
):
    carol = make_account("carol@example.com")
    subject, carol_id = carol.subject_key, carol.id
    _account, browser = dpo
    received = utcnow().date() - timedelta(days=3)
    response = submit(
        browser,
        "/office/requests/new",
        {
            "email": "Carol@example.com",
            "kind": "erasure",
            "received_via": "post",
            "received_on": received.isoformat(),
            "reason": "Letter of 30 Nov, ticket 77",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    db_session.expire_all()
    request = db_session.scalars(
        select(DataRequest).where(DataRequest.subject_key == subject)
    ).one()
    assert request.kind == "erasure"
    assert request.status == "completed"
    assert request.received_via == "post"
    assert request.recorded_by_email == "dpo@example.com"
    assert request.requested_at.date() == received
    assert db_session.get(Account, carol_id) is None
    mailbox.wait_for("carol@example.com", count=2)
    messages = {m["Subject"]: m for m in mailbox.to("carol@example.com")}
    assert set(messages) == {"We have received your data request", "Your account has been deleted"}
    assert "by post" in messages["We have received your data request"].get_content()
    access = db_session.scalars(select(StaffAccess).where(StaffAccess.kind == "request")).one()
    assert access.subject_key == subject
    assert access.reason == "Letter of 30 Nov, ticket 77"


def test_an_export_received_by_email_tells_the_consumer_and_can_be_downloaded(
    dpo, db_session, make_account, mailbox
):
    dave = make_account("dave@example.com")
    _account, browser = dpo
    response = submit(
        browser,
        "/office/requests/new",
        {
            "email": "dave@example.com",
            "kind": "export",
            "received_via": "email",
            "received_on": utcnow().date().isoformat(),
            "reason": "Email of today",
        },
    )
    assert response.status_code == 302
    told = mailbox.wait_for("dave@example.com")
    assert "/my-data/export/" in told.get_content()
    page = browser.get(response.location).get_data(as_text=True)
    assert "Download the export" in page
    token = csrf_token(browser, response.location)
    refused = browser.post(response.location + "/export.json", data={"csrf_token": token})
    assert refused.status_code == 422
    download = browser.post(
        response.location + "/export.json", data={"csrf_token": token, "reason": "Reply by post"}
    )
    assert download.status_code == 200
    assert download.get_json()["profile"]["email"] == "dave@example.com"
    kinds = db_session.scalars(
        select(StaffAccess.kind).where(StaffAccess.subject_key == dave.subject_key)
    ).all()
    assert sorted(kinds) == ["export", "request"]


def test_recording_a_request_explains_what_is_wrong(dpo, make_account):
    make_account("erin@example.com")
    _account, browser = dpo
    base = {
        "email": "erin@example.com",
        "kind": "export",
        "received_via": "post",
        "received_on": utcnow().date().isoformat(),
        "reason": "ticket",
    }
    cases = [
        ({"email": "nobody@example.com"}, "No consumer account has this email address."),
        ({"email": "dpo@example.com"}, "No consumer account has this email address."),
        ({"kind": ""}, "Choose the kind of request."),
        ({"received_via": "pigeon"}, "Not a valid choice."),
        (
            {"received_on": (utcnow().date() + timedelta(days=2)).isoformat()},
            "cannot be in the future",
        ),
        ({"reason": ""}, "Give the reason for this look-up."),
    ]
    for change, message in cases:
        response = submit(browser, "/office/requests/new", {**base, **change})
        assert response.status_code == 422, change
        assert message in response.get_data(as_text=True), change


def test_statistics_show_charts_and_the_same_numbers(dpo, history):
    _account, browser = dpo
    page = browser.get("/office/statistics")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert text.count('src="data:image/svg+xml;base64,') == 2
    assert "Withdrawals by a Global Privacy Control signal</th><td" in text
    assert "maison-berlingot / sms-offers" in text
    one_brand = browser.get(
        "/office/statistics",
        query_string={"brand": "maison-berlingot", "since": "2026-01-01", "until": "2026-12-31"},
    )
    assert one_brand.status_code == 200
    assert "aurore-automobiles / analytics" not in one_brand.get_data(as_text=True)
    bad = browser.get(
        "/office/statistics", query_string={"since": "2026-05-01", "until": "2026-01-01"}
    )
    assert bad.status_code == 422
