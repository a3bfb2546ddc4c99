"""The daily attention digest: who gets it, at most once a day, in their language."""

from __future__ import annotations

from datetime import timedelta

from babel.dates import format_date
from sqlalchemy import select

from tests.consent.conftest import purpose_of
from tests.mailbox import body, link_in
from tests.reminders.conftest import digests_of, run_daily
from vrm_portal.accounts.models import StaffRole
from vrm_portal.clock import utcnow
from vrm_portal.consent.service import version_of
from vrm_portal.jobs.engine import enqueue_scheduled
from vrm_portal.jobs.models import Job, JobStatus
from vrm_portal.reminders import service
from vrm_portal.reminders.models import ReminderDigest

ALICE = "alice@example.com"


def test_one_digest_lists_every_item_with_one_link_per_brand(
    app, db_session, make_account, give, mailbox
):
    alice = make_account(ALICE)
    give(alice, "maison-berlingot", "sms-offers", days_ago=350)
    give(alice, "maison-berlingot", "partner-sharing", days_ago=360)
    give(alice, "aurore-automobiles", "analytics", days_ago=380)
    give(alice, "domaine-des-coteaux", "analytics")  # nothing to say about it

    assert enqueue_scheduled(app.extensions["vrm_jobs"], "schedule.reminders") is not None

    [message] = mailbox.to(ALICE)
    text = body(message)
    assert message["Subject"] == "Your consents: what needs your attention"
    assert "3 of your consents need your attention:" in text
    assert "Offers by text message — expires on" in text
    assert "Sharing with partner companies — expires on" in text
    expires = (utcnow() + timedelta(days=15)).date()
    assert format_date(expires, "long", locale="en") in text
    # One link per brand with something to review, none for the others.
    assert text.count("/consents/maison-berlingot") == 1
    assert text.count("/consents/aurore-automobiles") == 1
    assert "domaine-des-coteaux" not in text.lower()
    assert "Domaine des Coteaux" not in text
    # A service message: the purposes' own texts (the brands' words) are not in it.
    sms = version_of(db_session, purpose_of(db_session, "maison-berlingot", "sms-offers"))
    assert sms.text_en not in text
    [digest] = digests_of(db_session, alice)
    assert (digest.sent_on, digest.items) == (utcnow().date(), 3)


def test_the_daily_job_run_twice_sends_one_email(app, db_session, make_account, give, mailbox):
    alice = make_account(ALICE)
    give(alice, "maison-berlingot", "sms-offers", days_ago=350)

    first = run_daily(app, db_session)
    second = run_daily(app, db_session)

    assert (first.status, first.result) == (JobStatus.DONE, {"planned": 1})
    assert (second.status, second.result) == (JobStatus.DONE, {"planned": 0})
    assert len(mailbox.to(ALICE)) == 1
    assert len(digests_of(db_session, alice)) == 1
    digest_jobs = db_session.scalars(select(Job).where(Job.kind == "reminders.digest")).all()
    assert [(job.account_id, job.status) for job in digest_jobs] == [(alice.id, "done")]


def test_a_digest_planned_by_another_run_is_not_planned_again(
    app, db_session, make_account, give, mailbox
):
    alice = make_account(ALICE)
    bruno = make_account("bruno@example.com")
    for account in (alice, bruno):
        give(account, "maison-berlingot", "sms-offers", days_ago=350)
    db_session.add(ReminderDigest(account_id=alice.id, sent_on=utcnow().date(), items=1))
    db_session.commit()

    assert run_daily(app, db_session).result == {"planned": 1}

    assert mailbox.to(ALICE) == []
    assert len(mailbox.to("bruno@example.com")) == 1


def test_the_unique_day_refuses_a_second_claim_and_keeps_the_transaction(db_session, make_account):
    alice = make_account(ALICE)
    today = utcnow().date()
    assert service.claim_digest(db_session, alice.id, today, 2) is True
    assert service.claim_digest(db_session, alice.id, today, 5) is False
    assert service.claim_digest(db_session, alice.id, today + timedelta(days=1), 1) is True
    db_session.commit()
    assert sorted((d.sent_on, d.items) for d in digests_of(db_session, alice)) == [
        (today, 2),
        (today + timedelta(days=1), 1),
    ]


def test_accounts_are_planned_in_batches_with_visible_progress(
    app, db_session, make_account, give, mailbox
):
    emails = [f"user{n}@example.com" for n in range(3)]
    for email in emails:
        give(make_account(email), "maison-berlingot", "sms-offers", days_ago=350)

    job = run_daily(app, db_session, batch_size=2)

    assert (job.status, job.result) == (JobStatus.DONE, {"planned": 3})
    assert (job.progress_done, job.progress_total) == (3, 3)
    assert all(len(mailbox.to(email)) == 1 for email in emails)


def test_a_run_that_crashes_resumes_after_its_last_batch_and_sends_no_duplicate(
    app, db_session, make_account, give, mailbox, monkeypatch
):
    first = make_account("first@example.com")
    second = make_account("second@example.com")
    for account in (first, second):
        give(account, "maison-berlingot", "sms-offers", days_ago=350)
    first_id, second_id = first.id, second.id  # read now: not from inside the job
    real_claim = service.claim_digest
    crashes = []

    def crash_once_on_second(session, account_id, day, items):
        if account_id == second_id and not crashes:
            crashes.append(account_id)
            raise RuntimeError("worker killed")
        return real_claim(session, account_id, day, items)

    monkeypatch.setattr(service, "claim_digest", crash_once_on_second)

    job = run_daily(app, db_session, batch_size=1)

    # The first batch was committed (and its email sent); the second was rolled back.
    assert (job.status, job.attempts, job.progress_done) == (JobStatus.QUEUED, 1, 1)
    assert job.payload["after"] == first_id
    assert len(mailbox.to("first@example.com")) == 1
    assert mailbox.to("second@example.com") == []
    job.next_attempt_at = utcnow()
    db_session.commit()

    assert app.extensions["vrm_jobs"].run_now(job.id).status == "done"

    assert len(mailbox.to("first@example.com")) == 1
    assert len(mailbox.to("second@example.com")) == 1
    done = db_session.get(Job, job.id, populate_existing=True)
    assert done.result == {"planned": 2}


def test_the_digest_is_in_the_accounts_language(app, db_session, make_account, give, mailbox):
    chloe = make_account("chloe@example.com", locale="fr")
    give(chloe, "maison-berlingot", "sms-offers", days_ago=350)

    run_daily(app, db_session)

    text = body(mailbox.wait_for("chloe@example.com"))
    assert "Offres par SMS" in text
    assert "Offers by text message" not in text
    expires = (utcnow() + timedelta(days=15)).date()
    assert format_date(expires, "long", locale="fr") in text
    assert format_date(expires, "long", locale="en") not in text


def test_no_digest_after_a_withdrawal(app, db_session, make_account, give, take_back, mailbox):
    alice = make_account(ALICE)
    give(alice, "maison-berlingot", "sms-offers", days_ago=350)
    take_back(alice, "maison-berlingot", "sms-offers")

    assert run_daily(app, db_session).result == {"planned": 0}

    assert mailbox.to(ALICE) == []
    assert digests_of(db_session, alice) == []


def test_a_withdrawal_between_planning_and_sending_stops_the_email(
    app, db_session, make_account, give, take_back, mailbox
):
    alice = make_account(ALICE)
    give(alice, "maison-berlingot", "sms-offers", days_ago=350)
    today = utcnow().date()
    # Planned, not yet run (a worker would take it a moment later).
    db_session.add(ReminderDigest(account_id=alice.id, sent_on=today, items=1))
    job = Job(
        id="t-digest-after-withdrawal",
        kind="reminders.digest",
        payload={"day": today.isoformat()},
        account_id=alice.id,
        status=JobStatus.QUEUED.value,
        attempts=0,
        max_attempts=8,
        created_at=utcnow(),
        next_attempt_at=utcnow(),
    )
    db_session.add(job)
    db_session.commit()
    take_back(alice, "maison-berlingot", "sms-offers")

    assert app.extensions["vrm_jobs"].run_now(job.id).status == "done"

    assert mailbox.to(ALICE) == []
    finished = db_session.get(Job, job.id, populate_existing=True)
    assert finished.result == {"sent": False, "why": "nothing left"}
    assert digests_of(db_session, alice)[0].items == 0


def test_no_digest_when_the_setting_is_off(app, db_session, make_account, give, mailbox):
    alice = make_account(ALICE)
    give(alice, "maison-berlingot", "sms-offers", days_ago=350)
    alice.attention_emails = False
    db_session.commit()

    assert run_daily(app, db_session).result == {"planned": 0}
    assert mailbox.to(ALICE) == []


def test_no_digest_for_unconfirmed_addresses_or_staff(app, db_session, make_account, give, mailbox):
    unconfirmed = make_account("new@example.com", verified=False)
    staff = make_account("dpo@example.com", role=StaffRole.DPO)
    for account in (unconfirmed, staff):
        give(account, "maison-berlingot", "sms-offers", days_ago=350)

    assert run_daily(app, db_session).result == {"planned": 0}
    assert mailbox.messages == []


def test_the_digest_carries_a_one_click_unsubscribe_header(
    app, db_session, make_account, give, mailbox
):
    alice = make_account(ALICE)
    give(alice, "maison-berlingot", "sms-offers", days_ago=350)

    run_daily(app, db_session)

    message = mailbox.wait_for(ALICE)
    off_path = link_in(message, "/attention-emails/off/")
    # As sent: one plain <URL>, not folded into encoded words mail clients cannot read.
    raw = dict(message.raw_items())
    assert raw["List-Unsubscribe"] == f"<http://localhost{off_path}>"
    assert raw["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/account/attention-emails" in body(message)
