"""Erasure (GDPR art. 17): request with re-authentication, grace period, cancel, the end.

Everything runs on the real database; the brand's view is checked through the real API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import ForeignKey, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.api.conftest import BrandApi, brand_api, consents, pairwise
from tests.conftest import PASSWORD, csrf_token, submit
from tests.consent.conftest import alice, catalogue, notary
from tests.mailbox import Mailbox, body
from tests.requests.erasure_data import give_everything, rows_mentioning, rows_of_account
from vrm_portal.accounts.models import Account, AuthSession
from vrm_portal.all_models import Base
from vrm_portal.brands.models import BrandChange
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentEvent
from vrm_portal.consent.service import Notary
from vrm_portal.requests import erasure, service
from vrm_portal.requests.models import DataRequest, RequestStatus
from vrm_portal.webhooks.models import WebhookDelivery
from vrm_portal.webhooks.service import register_endpoint

__all__ = ["alice", "brand_api", "catalogue", "consents", "notary", "pairwise"]

PAGE = "/account/delete/"


def ask(client: FlaskClient, **data: str) -> object:
    form = {"when": "later", "password": PASSWORD, "understood": "y"} | data
    return submit(client, PAGE, form)


def requests_of(session: Session, subject_key: str) -> list[DataRequest]:
    return list(
        session.scalars(
            select(DataRequest)
            .where(DataRequest.subject_key == subject_key)
            .order_by(DataRequest.id)
            .execution_options(populate_existing=True)
        )
    )


# ---- the page and its checks ----------------------------------------------------------


def test_the_page_needs_a_signed_in_consumer(client: FlaskClient) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_the_page_explains_what_goes_and_what_stays(client: FlaskClient, alice: Account) -> None:
    page = client.get(PAGE).get_data(as_text=True)
    assert "Delete your account" in page
    assert "In 30 days, so that I can change my mind" in page
    assert "The consent log keeps" in page
    assert 'name="password"' in page
    assert client.get(PAGE).headers["Cache-Control"].startswith("no-store")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"password": "not-the-password-1"}, "Your password is not right."),
        ({"password": ""}, "Enter your password to confirm that it is you."),
        ({"understood": ""}, "Tick the box to confirm that you understand."),
        ({"when": "tomorrow"}, "Not a valid choice"),
        ({"password": "x" * 129}, "A password has at most 128 characters."),
    ],
)
def test_bad_input_is_refused_with_a_message_and_changes_nothing(
    client: FlaskClient,
    alice: Account,
    db_session: Session,
    data: dict[str, str],
    message: str,
) -> None:
    response = ask(client, **data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert requests_of(db_session, alice.subject_key) == []


def test_a_post_without_the_csrf_token_is_refused(
    client: FlaskClient, alice: Account, db_session: Session
) -> None:
    response = client.post(PAGE, data={"when": "now", "password": PASSWORD, "understood": "y"})
    assert response.status_code in {400, 422}
    assert db_session.get(Account, alice.id, populate_existing=True) is not None


def test_staff_accounts_are_not_deleted_here(
    client: FlaskClient, alice: Account, db_session: Session
) -> None:
    account = db_session.get(Account, alice.id)
    assert account is not None
    account.staff_role = "dpo"  # promoted while signed in
    db_session.commit()
    # Staff do not use the consumer pages: the deletion page sends them to their console,
    # and a deletion sent anyway deletes nothing.
    shown = client.get(PAGE)
    assert shown.status_code == 302
    assert shown.location == "/office/"
    form = {"when": "now", "password": PASSWORD, "understood": "y"}
    token = csrf_token(client, "/account/sessions")
    response = client.post(PAGE, data={"csrf_token": token, **form})
    assert response.status_code == 302
    assert response.location == "/office/"
    assert db_session.get(Account, alice.id, populate_existing=True) is not None
    assert requests_of(db_session, alice.subject_key) == []


# ---- the grace period -------------------------------------------------------------------


def test_a_scheduled_erasure_waits_30_days_and_can_be_cancelled(
    client: FlaskClient, alice: Account, db_session: Session, mailbox: Mailbox
) -> None:
    before = utcnow()
    response = ask(client)
    assert response.status_code == 302
    [scheduled] = requests_of(db_session, alice.subject_key)
    assert scheduled.status == RequestStatus.SCHEDULED
    assert scheduled.kind == "erasure"
    assert scheduled.due_at is not None
    assert timedelta(days=30) <= scheduled.due_at - before < timedelta(days=30, minutes=1)
    notice = mailbox.wait_for("alice@example.com")
    assert notice["Subject"] == "Your account will be deleted"
    assert scheduled.reference in body(notice)
    assert "/account/delete/" in body(notice)

    # Nothing is erased yet, and every page says what will happen.
    assert db_session.get(Account, alice.id, populate_existing=True) is not None
    overview = client.get("/account/").get_data(as_text=True)
    assert "Your account will be deleted on" in overview
    assert "Keep my account or delete it now" in overview

    response = submit(client, "/account/delete/cancel", {}, form_page=PAGE)
    assert response.status_code == 302
    assert "Your account will not be deleted" in client.get("/account/").get_data(as_text=True)
    [cancelled] = requests_of(db_session, alice.subject_key)
    assert cancelled.status == RequestStatus.CANCELLED
    assert cancelled.cancelled_at is not None
    assert "Your account will be deleted on" not in client.get("/account/").get_data(as_text=True)
    assert mailbox.wait_for("alice@example.com", count=2)["Subject"] == (
        "Your account will not be deleted"
    )


def test_a_second_request_while_one_is_pending_is_refused(
    client: FlaskClient, alice: Account, db_session: Session
) -> None:
    ask(client)
    token = csrf_token(client, "/account/")
    response = client.post(
        PAGE,
        data={"csrf_token": token, "when": "later", "password": PASSWORD, "understood": "y"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "Your account is already scheduled for deletion on" in page
    assert len(requests_of(db_session, alice.subject_key)) == 1

    with pytest.raises(service.ErasureAlreadyPending):
        service.schedule_erasure(db_session, alice, utcnow())


def test_the_database_refuses_two_scheduled_erasures_whatever_the_race(
    alice: Account, db_session: Session
) -> None:
    service.schedule_erasure(db_session, alice, utcnow())
    db_session.commit()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.execute(
            insert(DataRequest).values(
                reference="raced",
                account_id=alice.id,
                subject_key=alice.subject_key,
                kind="erasure",
                status="scheduled",
                requested_at=utcnow(),
                due_at=utcnow(),
                detail={},
            )
        )


def test_cancelling_when_nothing_is_scheduled_says_so(client: FlaskClient, alice: Account) -> None:
    response = submit(client, "/account/delete/cancel", {}, form_page=PAGE)
    assert response.status_code == 302
    assert "Your account is not scheduled for deletion." in client.get(PAGE).get_data(as_text=True)


# ---- the erasure itself -------------------------------------------------------------------


def test_erasing_now_leaves_no_personal_data_and_tells_every_brand(
    client: FlaskClient,
    alice: Account,
    db_session: Session,
    notary: Notary,
    mailbox: Mailbox,
    brand_api: Callable[..., BrandApi],
    pairwise: Callable[[Account, str], str],
) -> None:
    footprint = give_everything(db_session, notary, alice)
    aurore_id, berlingot_id = (
        pairwise(alice, "aurore-automobiles"),
        pairwise(alice, "maison-berlingot"),
    )
    aurore = brand_api("aurore-automobiles")
    assert aurore.get(f"/api/v1/consumers/{aurore_id}").status_code == 200
    events_before = db_session.scalars(
        select(ConsentEvent.seq).where(ConsentEvent.subject_key == alice.subject_key)
    ).all()

    response = ask(client, when="now")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/account/deleted?reference=")
    farewell_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your account has been deleted" in farewell_page

    # Signed out, and no way back in.
    assert client.get("/account/").status_code == 302
    assert db_session.get(Account, footprint.account_id, populate_existing=True) is None
    assert rows_of_account(db_session, Base.metadata, footprint.account_id) == {}
    assert rows_mentioning(db_session, Base.metadata, footprint.needles) == []

    # The ledger keeps the history under the subject key, now with the consents that were
    # still standing withdrawn "by erasure", and it still verifies end to end.
    events = list(
        db_session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.subject_key == footprint.subject_key)
            .order_by(ConsentEvent.seq)
        )
    )
    assert [e.seq for e in events][: len(events_before)] == list(events_before)
    closing = [ledger.document_of(e) for e in events[len(events_before) :]]
    assert sorted((d["brand"], d["purpose"], d["action"], d["method"]) for d in closing) == [
        ("aurore-automobiles", "personalised-offers", "withdrawn", "erasure"),
        ("aurore-automobiles", "sms-offers", "withdrawn", "erasure"),
        ("maison-berlingot", "sms-offers", "withdrawn", "erasure"),
    ]
    assert ledger.verify(db_session.connection()).ok

    # Each brand's feed says consumer.erased for its own pairwise id, last.
    for brand_slug, pairwise_id in [
        ("aurore-automobiles", aurore_id),
        ("maison-berlingot", berlingot_id),
    ]:
        last = db_session.scalars(
            select(BrandChange)
            .where(BrandChange.pairwise_id == pairwise_id)
            .order_by(BrandChange.seq.desc())
        ).first()
        assert last is not None, brand_slug
        assert last.kind == "consumer.erased", brand_slug

    # The brand's API no longer knows the consumer, and its feed tells it to forget them.
    missing = aurore.get(f"/api/v1/consumers/{aurore_id}")
    assert missing.status_code == 404
    assert missing.content_type == "application/problem+json"
    feed = aurore.get("/api/v1/changes?limit=100").json["items"]
    assert feed[-1]["type"] == "consumer.erased"
    assert feed[-1]["consumer_id"] == aurore_id
    assert all(aurore_id != c["consumer_id"] for c in aurore.get("/api/v1/consumers").json["items"])

    # The request stays, for the privacy office, with no link to a person but the subject key.
    [request] = requests_of(db_session, footprint.subject_key)
    assert request.account_id is None
    assert request.status == RequestStatus.COMPLETED
    assert request.detail["brands_told"] == 2
    assert request.detail["consents_withdrawn"] == 3
    assert request.detail["rows_erased"]["interactions"] == 1

    farewell = mailbox.wait_for("alice@example.com", count=1)
    assert farewell["Subject"] == "Your account has been deleted"
    assert request.reference in body(farewell)
    assert "We told the 2 brands you dealt with" in body(farewell)


def test_the_erased_address_can_register_again_as_a_stranger(
    client: FlaskClient, alice: Account, db_session: Session, make_account: Callable[..., Account]
) -> None:
    old_subject = alice.subject_key
    ask(client, when="now")
    db_session.expunge_all()
    again = make_account("alice@example.com")
    assert again.subject_key != old_subject


def test_every_table_that_points_at_accounts_is_handled_by_the_erasure() -> None:
    """A new table with an ``account_id`` must be added to the erasure (or kept, unlinked)."""
    handled = {t.name for t in (*erasure.ERASED_TABLES, *erasure.KEPT_WITHOUT_LINK)}
    handled |= {"intents"}  # deleted with their intent_brands first
    handled |= erasure.STAFF_ONLY_TABLES
    pointing = {
        table.name
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_keys
        if isinstance(fk, ForeignKey) and fk.column.table.name == "accounts"
    }
    assert pointing, "the schema has tables pointing at accounts"
    assert pointing <= handled, pointing - handled


def test_a_failure_in_the_middle_leaves_the_account_untouched(
    client: FlaskClient,
    alice: Account,
    db_session: Session,
    notary: Notary,
    monkeypatch: pytest.MonkeyPatch,
    mailbox: Mailbox,
) -> None:
    footprint = give_everything(db_session, notary, alice)
    before = rows_of_account(db_session, Base.metadata, footprint.account_id)
    ledger_before = db_session.scalar(select(ConsentEvent.seq).order_by(ConsentEvent.seq.desc()))
    feed_before = db_session.scalars(select(BrandChange.seq)).all()
    real_delete = erasure.delete_account_rows

    def failing(session: Session, table: object, account_id: int) -> int:
        if getattr(table, "name", "") == "linked_identities":  # after several tables went
            raise RuntimeError("disk full")
        return real_delete(session, table, account_id)  # type: ignore[arg-type]

    monkeypatch.setattr(erasure, "delete_account_rows", failing)
    client.application.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        response = ask(client, when="now")
    finally:
        client.application.config["PROPAGATE_EXCEPTIONS"] = None
    assert response.status_code == 500

    db_session.expire_all()
    assert rows_of_account(db_session, Base.metadata, footprint.account_id) == before
    assert (
        db_session.scalar(select(ConsentEvent.seq).order_by(ConsentEvent.seq.desc()))
        == ledger_before
    )
    assert db_session.scalars(select(BrandChange.seq)).all() == feed_before
    assert requests_of(db_session, footprint.subject_key) == []
    assert mailbox.to("alice@example.com") == []
    # Still signed in, still whole.
    assert client.get("/account/").status_code == 200


# ---- the worker (cron) --------------------------------------------------------------------


def test_the_worker_erases_what_is_due_and_nothing_else(
    app: Flask,
    make_account: Callable[..., Account],
    db_session: Session,
    notary: Notary,
    catalogue: None,
) -> None:
    due = make_account("due@example.com")
    later = make_account("later@example.com")
    cancelled = make_account("cancelled@example.com")
    now = utcnow()
    service.schedule_erasure(db_session, due, now - timedelta(days=31))
    service.schedule_erasure(db_session, later, now - timedelta(days=29))
    service.schedule_erasure(db_session, cancelled, now - timedelta(days=40))
    service.cancel_erasure(db_session, cancelled, now - timedelta(days=35))
    db_session.commit()
    ids = {a.email: (a.id, a.subject_key) for a in (due, later, cancelled)}

    told: list[erasure.Farewell] = []
    run = erasure.process_due(db_session, notary, now, farewell=told.append)

    assert len(run.erased) == 1
    assert run.failed == []
    assert [f.email for f in told] == ["due@example.com"]
    assert db_session.get(Account, ids["due@example.com"][0]) is None
    assert db_session.get(Account, ids["later@example.com"][0]) is not None
    assert db_session.get(Account, ids["cancelled@example.com"][0]) is not None
    [done] = requests_of(db_session, ids["due@example.com"][1])
    assert done.status == RequestStatus.COMPLETED
    assert done.reference == run.erased[0]
    # A second pass finds nothing to do.
    assert erasure.process_due(db_session, notary, now).erased == []


def test_the_worker_rolls_back_a_failed_erasure_and_retries_it_next_time(
    make_account: Callable[..., Account],
    db_session: Session,
    notary: Notary,
    catalogue: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = make_account("fragile@example.com")
    footprint = give_everything(db_session, notary, account)
    other = make_account("sturdy@example.com")
    now = utcnow()
    service.schedule_erasure(db_session, account, now - timedelta(days=31))
    service.schedule_erasure(db_session, other, now - timedelta(days=30, minutes=1))
    db_session.commit()
    before = rows_of_account(db_session, Base.metadata, footprint.account_id)
    real_delete = erasure.delete_account_rows

    def failing(session: Session, table: object, account_id: int) -> int:
        if account_id == footprint.account_id and getattr(table, "name", "") == "account_events":
            raise RuntimeError("connection lost")
        return real_delete(session, table, account_id)  # type: ignore[arg-type]

    monkeypatch.setattr(erasure, "delete_account_rows", failing)
    run = erasure.process_due(db_session, notary, now)
    assert len(run.failed) == 1
    assert len(run.erased) == 1
    db_session.expire_all()
    assert rows_of_account(db_session, Base.metadata, footprint.account_id) == before
    [pending] = requests_of(db_session, footprint.subject_key)
    assert pending.status == RequestStatus.SCHEDULED
    assert pending.detail == {"failed_attempts": 1, "last_error": "RuntimeError"}

    monkeypatch.setattr(erasure, "delete_account_rows", real_delete)
    run = erasure.process_due(db_session, notary, now)
    assert len(run.erased) == 1
    assert run.failed == []
    assert rows_of_account(db_session, Base.metadata, footprint.account_id) == {}
    [done] = requests_of(db_session, footprint.subject_key)
    assert done.status == RequestStatus.COMPLETED
    assert done.detail["failed_attempts"] == 1


# ---- during the grace period -------------------------------------------------------------


def test_during_the_grace_period_the_consumer_may_delete_at_once(
    client: FlaskClient, alice: Account, db_session: Session, mailbox: Mailbox
) -> None:
    account_id, subject_key = alice.id, alice.subject_key
    ask(client)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Keep my account" in page
    assert "Delete my account now" in page
    wrong = submit(
        client,
        "/account/delete/now",
        {"password": "nope-nope-nope", "understood": "y"},
        form_page=PAGE,
    )
    assert wrong.status_code == 422
    assert "Your password is not right." in wrong.get_data(as_text=True)
    response = submit(
        client, "/account/delete/now", {"password": PASSWORD, "understood": "y"}, form_page=PAGE
    )
    assert response.status_code == 302
    assert db_session.get(Account, account_id, populate_existing=True) is None
    [request] = requests_of(db_session, subject_key)  # the same request, completed
    assert request.status == RequestStatus.COMPLETED


def test_delete_now_without_a_scheduled_erasure_is_refused(
    client: FlaskClient, alice: Account, db_session: Session
) -> None:
    token = csrf_token(client, PAGE)
    response = client.post(
        "/account/delete/now",
        data={"csrf_token": token, "password": PASSWORD, "understood": "y"},
        follow_redirects=True,
    )
    assert "Your account is not scheduled for deletion." in response.get_data(as_text=True)
    assert db_session.get(Account, alice.id, populate_existing=True) is not None


# ---- accounts without a password ----------------------------------------------------------


def test_an_account_without_password_needs_a_recent_sign_in(
    client: FlaskClient, alice: Account, db_session: Session
) -> None:
    account = db_session.get(Account, alice.id)
    assert account is not None
    account.password_hash = None
    db_session.commit()
    page = client.get(PAGE).get_data(as_text=True)
    assert 'name="password"' not in page

    # Signed in long ago: asked to sign in again.
    for auth_session in db_session.scalars(
        select(AuthSession).where(AuthSession.account_id == alice.id)
    ):
        auth_session.created_at = utcnow() - timedelta(minutes=11)
    db_session.commit()
    token = csrf_token(client, PAGE)
    stale = client.post(PAGE, data={"csrf_token": token, "when": "now", "understood": "y"})
    assert stale.status_code == 422
    assert "sign in again" in stale.get_data(as_text=True)
    assert db_session.get(Account, alice.id, populate_existing=True) is not None

    # Just signed in: allowed.
    for auth_session in db_session.scalars(
        select(AuthSession).where(AuthSession.account_id == alice.id)
    ):
        auth_session.created_at = utcnow()
    db_session.commit()
    account_id = alice.id
    fresh = client.post(PAGE, data={"csrf_token": token, "when": "now", "understood": "y"})
    assert fresh.status_code == 302
    assert db_session.get(Account, account_id, populate_existing=True) is None


def test_brands_with_a_webhook_get_the_erasure_pushed(
    client: FlaskClient, alice: Account, db_session: Session, notary: Notary
) -> None:
    """The ``consumer.erased`` entry joins the webhook outbox in the erasure's transaction."""
    give_everything(db_session, notary, alice)
    aurore = brand_by_slug(db_session, "aurore-automobiles")
    assert aurore is not None
    register_endpoint(
        db_session,
        aurore,
        "https://crm.aurore.example/hooks",
        allow_loopback_http=False,
        now=utcnow(),
    )
    db_session.commit()
    ask(client, when="now")
    queued = (
        db_session.execute(
            select(BrandChange.kind)
            .join(
                WebhookDelivery,
                (WebhookDelivery.brand_id == BrandChange.brand_id)
                & (WebhookDelivery.change_seq == BrandChange.seq),
            )
            .where(BrandChange.brand_id == aurore.id)
            .order_by(BrandChange.seq)
        )
        .scalars()
        .all()
    )
    assert queued == ["consent.withdrawn", "consent.withdrawn", "consumer.erased"]
