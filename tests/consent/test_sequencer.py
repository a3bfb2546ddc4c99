"""The write path with a worker sequencer (``LEDGER_SEQUENCER=worker``): a change commits
its state, its signed receipt and an intake row; the sequencer gives the event its place
in the ledger, its tree leaf and its feed entry later, in batches.

The app under test integrates inline (its jobs run ``immediate``); these tests switch it
to ``worker`` and run the sequencer themselves, deterministically.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import PASSWORD, csrf_token, submit
from tests.consent.test_receipts import download, public_keys, verified_payload
from tests.consent.test_write_cost import statements
from vrm_portal.brands.models import BrandChange
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, sequencer
from vrm_portal.consent.models import ConsentEvent, ConsentReceipt, ConsentState, EventIntake
from vrm_portal.extensions import db
from vrm_portal.log import event_proof
from vrm_portal.log import service as log_service
from vrm_portal.log.signing import log_signer

BRAND_PAGE = "/consents/aurore-automobiles"
ANALYTICS = "/consents/aurore-automobiles/analytics"
#: A save through the form with a worker sequencer: the session and account, the brand
#: with the purpose and its text, the state with the account's lock, the state's write,
#: the receipt, the intake row.
WORKER_SAVE_STATEMENTS = 8


@pytest.fixture
def worker_mode(app: Flask) -> Iterator[None]:
    previous = app.config["LEDGER_SEQUENCER_MODE"]
    app.config["LEDGER_SEQUENCER_MODE"] = sequencer.WORKER
    try:
        yield
    finally:
        app.config["LEDGER_SEQUENCER_MODE"] = previous


def _save(client, token: str, choice: str) -> None:
    response = client.post(ANALYTICS, data={"csrf_token": token, "choice": choice, "version": 1})
    assert response.status_code == 303, response.get_data(as_text=True)


def _integrate(app: Flask) -> list[sequencer.Integrated]:
    with app.app_context():
        done = sequencer.integrate(db.session)
        db.session.commit()
        return done


def test_a_save_runs_at_most_eight_statements_and_leaves_the_ledger_alone(
    app, client, alice, connection, db_session, worker_mode
):
    token = csrf_token(client, BRAND_PAGE)
    _save(client, token, "grant")
    _integrate(app)
    for choice in ("withdraw", "grant"):
        with statements(connection) as seen:
            _save(client, token, choice)
        assert len(seen) <= WORKER_SAVE_STATEMENTS, "\n".join(seen)
        # No lock on the ledger head, none on the brand row, nothing in the ledger yet.
        assert not any("consent_ledger_head" in s or "UPDATE brands" in s for s in seen)
        assert not any(s.startswith("INSERT INTO consent_events") for s in seen)
        assert sum(s.startswith("INSERT INTO consent_event_intake") for s in seen) == 1
    # The state (what the brand API reads) changed at once.
    state = db_session.scalar(
        select(ConsentState)
        .where(ConsentState.account_id == alice.id)
        .execution_options(populate_existing=True)
    )
    assert state is not None
    assert state.status == "granted"
    assert len(_integrate(app)) == 2
    assert db_session.scalar(select(func.count()).select_from(EventIntake)) == 0


def test_a_receipt_verifies_before_integration_and_its_proof_after(
    app, client, alice, db_session, worker_mode
):
    token = csrf_token(client, BRAND_PAGE)
    _save(client, token, "grant")
    (stored,) = db_session.scalars(
        select(ConsentReceipt).where(ConsentReceipt.account_id == alice.id)
    ).all()
    assert stored.event_seq is None
    assert db_session.scalar(select(func.count()).select_from(ConsentEvent)) == 0

    # Before integration: signed at once, a promise naming the event by content hash.
    payload = verified_payload(download(client, stored.receipt_id), public_keys(client))
    promise = payload["ledgerEvent"]
    assert set(promise) == {"eventId", "contentHash", "integrateBy"}
    assert ledger.parse_timestamp(promise["integrateBy"]) > utcnow()
    page = client.get(f"/consents/receipts/{stored.receipt_id}").get_data(as_text=True)
    assert 'data-verdict="valid"' in page
    assert "Being added to the consent log" in page

    (done,) = _integrate(app)
    assert done.event_id == promise["eventId"]
    event = db_session.get(ConsentEvent, done.seq)
    assert event is not None
    # The receipt's content hash is the integrated event's, without seq and prev_hash.
    assert ledger.content_hash_of_body(event.body).hex() == promise["contentHash"]
    db_session.expire_all()
    assert db_session.get(ConsentReceipt, stored.id).event_seq == done.seq

    with app.app_context():
        log_service.sign_checkpoint(db.session, log_signer(), utcnow())
        db.session.commit()
        found = event_proof.event_in_log(
            db.session, alice.subject_key, done.seq, log_signer().verifier_key
        )
    assert found is not None
    assert found.verified
    page = client.get(f"/consents/receipts/{stored.receipt_id}").get_data(as_text=True)
    assert f"Number {done.seq}" in page
    link = re.search(r'href="(/consents/history/\d+/log)"', page)
    assert link
    assert link.group(1) == f"/consents/history/{done.seq}/log"
    assert client.get(link.group(1)).status_code == 200


def test_the_sequencer_writes_the_feed_in_integration_order(
    app, client, alice, db_session, connection, worker_mode
):
    token = csrf_token(client, BRAND_PAGE)
    for choice in ("grant", "withdraw", "grant"):
        _save(client, token, choice)
    assert db_session.scalar(select(func.count()).select_from(BrandChange)) == 0
    done = _integrate(app)
    assert [d.seq for d in done] == [1, 2, 3]
    kinds = db_session.scalars(select(BrandChange.kind).order_by(BrandChange.seq)).all()
    assert kinds == ["consent.granted", "consent.withdrawn", "consent.granted"]
    assert ledger.verify(connection).ok
    # Nothing left: a second pass integrates nothing, twice nothing.
    assert _integrate(app) == []
    assert db_session.scalar(select(func.count()).select_from(ConsentEvent)) == 3


def test_the_sequence_ledger_command_integrates_what_waits(
    app, client, alice, db_session, worker_mode
):
    token = csrf_token(client, BRAND_PAGE)
    _save(client, token, "grant")
    result = app.test_cli_runner().invoke(args=["vrm", "sequence-ledger"])
    assert result.exit_code == 0, result.output
    assert "1 event(s) integrated" in result.output
    assert db_session.scalar(select(func.count()).select_from(ConsentEvent)) == 1
    again = app.test_cli_runner().invoke(args=["vrm", "sequence-ledger"])
    assert "0 event(s) integrated" in again.output


def test_an_erasure_integrates_its_withdrawals_before_telling_the_brand(
    app, client, alice, db_session, worker_mode
):
    token = csrf_token(client, BRAND_PAGE)
    _save(client, token, "grant")  # waits in the intake: no worker runs here
    response = submit(
        client,
        "/account/delete/",
        {"when": "now", "password": PASSWORD, "understood": "y"},
    )
    assert response.status_code == 302
    kinds = db_session.scalars(select(BrandChange.kind).order_by(BrandChange.seq)).all()
    assert kinds == ["consent.granted", "consent.withdrawn", "consumer.erased"]
    assert db_session.scalar(select(func.count()).select_from(EventIntake)) == 0
    actions = db_session.scalars(select(ConsentEvent.action).order_by(ConsentEvent.seq)).all()
    assert actions == ["granted", "withdrawn"]
