"""One event's proof page, and full verifications of the ledger from the console."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from tests.conftest import csrf_token
from tests.consent.test_ledger_integrity import triggers_off
from vrm_portal.accounts.models import StaffRole
from vrm_portal.audit.models import StaffAction
from vrm_portal.consent.models import ConsentEvent
from vrm_portal.history.models import StaffAccess
from vrm_portal.privacy_office import verification
from vrm_portal.privacy_office.models import VerificationRun


def _run(db_session) -> VerificationRun:
    db_session.expire_all()
    run = db_session.scalars(select(VerificationRun).order_by(VerificationRun.id.desc())).first()
    assert run is not None
    return run


def test_the_event_page_asks_for_a_reason_then_proves_the_event(dpo, history, db_session):
    _account, browser = dpo
    alice = history["alice"]
    event = db_session.scalars(
        select(ConsentEvent).where(ConsentEvent.subject_key == alice.subject_key)
    ).first()
    asked = browser.get(f"/office/log/{event.seq}")
    assert asked.status_code == 200
    assert event.body not in asked.get_data(as_text=True)
    assert db_session.scalars(select(StaffAccess)).first() is None
    empty = browser.get(f"/office/log/{event.seq}", query_string={"reason": ""})
    assert "Give the reason for this look-up." in empty.get_data(as_text=True)

    page = browser.get(f"/office/log/{event.seq}", query_string={"reason": "Ticket 9"})
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert event.hash.hex() in body
    assert "prev_hash" in body
    assert event.event_id in body
    assert "Verifies" in body
    assert "Signature valid" in body
    assert "matches the event" in body
    assert re.search(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", body), "the compact JWS"
    access = db_session.scalars(select(StaffAccess)).one()
    assert (access.subject_key, access.kind, access.detail) == (
        alice.subject_key,
        "event",
        {"seq": event.seq},
    )
    assert browser.get("/office/log/999999", query_string={"reason": "x"}).status_code == 404


def test_a_verification_runs_as_a_job_and_keeps_its_result(dpo, history, db_session, client):
    _account, browser = dpo
    page = browser.get("/office/verification")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    response = browser.post("/office/verification", data={"csrf_token": token.group(1)})
    assert response.status_code == 302
    run = _run(db_session)
    assert response.location == f"/office/verification/{run.id}"
    assert (run.status, run.checked, run.total) == ("ok", 7, 7)
    assert run.started_by_email == "dpo@example.com"
    progress = browser.get(f"/office/verification/{run.id}/progress.json").get_json()
    assert progress["status"] == "ok"
    assert progress["checked"] == 7
    assert progress["percent"] == 100
    shown = browser.get(response.location).get_data(as_text=True)
    assert "7 of 7 events checked" in shown
    listing = browser.get("/office/verification").get_data(as_text=True)
    assert f"Run {run.id}" in listing
    assert "dpo@example.com" in listing
    assert (
        db_session.scalars(
            select(StaffAction.action).where(StaffAction.action == "ledger.verification_started")
        ).one()
        == "ledger.verification_started"
    )
    # Without a CSRF token nothing starts.
    assert browser.post("/office/verification", data={}).status_code == 400


def test_a_tampered_ledger_is_reported_at_the_right_event(
    dpo, history, db_session, connection, mailbox, make_account
):
    make_account("dpo2@example.com", role=StaffRole.DPO)
    _account, browser = dpo
    triggers_off(connection)
    events = ConsentEvent.__table__
    body = connection.execute(select(events.c.body).where(events.c.seq == 4)).scalar_one()
    connection.execute(
        update(events)
        .where(events.c.seq == 4)
        .values(body=body.replace('"action":"granted"', '"action":"withdrawn"'))
    )
    token = csrf_token(browser, "/office/verification")
    assert browser.post("/office/verification", data={"csrf_token": token}).status_code == 302
    run = _run(db_session)
    assert run.status == "failed"
    assert run.first_bad_seq == 4
    assert run.checked == 3
    assert "altered" in (run.problem or "")
    front = browser.get("/office/").get_data(as_text=True)
    assert "failed at event #4" in front
    for officer in ("dpo@example.com", "dpo2@example.com"):
        message = mailbox.wait_for(officer)
        assert message["Subject"] == "The consent ledger failed its verification"
        assert "First bad event: #4" in message.get_content()


def test_the_daily_verification_writes_to_the_same_list(app, dpo, history, db_session):
    from vrm_portal.jobs import engine
    from vrm_portal.jobs.models import Job

    assert engine.SCHEDULES["VERIFY_LEDGER"] == verification.SCHEDULED_KIND
    with app.app_context():
        from vrm_portal.extensions import db
        from vrm_portal.jobs.service import enqueue

        job_id = enqueue(db.session, verification.SCHEDULED_KIND, {})
        db.session.commit()
    run = _run(db_session)
    assert run.started_by_email is None
    assert run.status == "ok"
    assert run.checked == 7
    assert run.job_id == job_id
    assert db_session.get(Job, job_id).status == "done"
    _account, browser = dpo
    assert "Daily schedule" in browser.get("/office/verification").get_data(as_text=True)


def test_progress_is_reported_between_batches(db_session, history, connection):
    from vrm_portal.consent import ledger

    seen: list[int] = []
    result = ledger.verify(connection, batch=3, progress=seen.append)
    assert result.ok
    assert seen == [3, 6, 7]


def test_progress_numbers(db_session):
    from datetime import timedelta

    from vrm_portal.clock import utcnow

    now = utcnow()
    run = VerificationRun(
        started_at=now - timedelta(seconds=10),
        progress_at=now,
        status="running",
        checked=1000,
        total=4000,
    )
    progress = verification.progress_of(run)
    assert progress.percent == 25
    assert round(progress.rate) == 100
    assert progress.seconds_left == 30
