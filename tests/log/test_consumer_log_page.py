"""The consumer's "Check it is in the public log" page: only their own events, the proof
checked on the server against the latest signed checkpoint, the proof to download (checked
here again with merkle.verify_inclusion), and the wait for the next checkpoint."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest
from flask import Flask

from tests.consent.conftest import alice, events_of, purpose_of
from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.extensions import db
from vrm_portal.log import event_proof, merkle, note
from vrm_portal.log import service as log_service
from vrm_portal.log.signing import log_signer

pytestmark = pytest.mark.usefixtures("catalogue")

__all__ = ["alice"]


def sign(app: Flask) -> log_service.Signed | None:
    with app.app_context():
        signed = log_service.sign_checkpoint(db.session, log_signer(), utcnow())
        db.session.commit()
        return signed


@pytest.fixture
def history(db_session, alice: Account, make_account, notary, change) -> dict[str, list[int]]:
    """Alice's events and Bob's, interleaved; the seqs of each."""
    bob = make_account("bob@example.com")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    analytics = purpose_of(db_session, "aurore-automobiles", "analytics")
    service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
    service.grant(db_session, notary, bob, sms, shown_version=1, change=change())
    service.grant(db_session, notary, alice, analytics, shown_version=1, change=change())
    service.withdraw(db_session, notary, alice, sms, change=change())
    db_session.commit()
    return {
        "alice": [e.seq for e in events_of(db_session, alice)],
        "bob": [e.seq for e in events_of(db_session, bob)],
    }


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_each_row_of_the_history_links_to_its_check(app, client, history):
    page = client.get("/consents/history").get_data(as_text=True)
    links = re.findall(r'href="/consents/history/(\d+)/log"', page)
    assert sorted(int(seq) for seq in links) == history["alice"]
    assert page.count("Check it is in the public log") == len(history["alice"])


def test_the_page_shows_the_verified_proof_of_the_consumers_event(app, client, history):
    signed = sign(app)
    assert signed is not None
    seq = history["alice"][1]
    response = client.get(f"/consents/history/{seq}/log")
    assert response.status_code == 200
    page = text_of(response)
    assert "Verified." in page
    assert f"Entry number {seq - 1} (the log counts from 0)" in page
    assert "It was first included in the checkpoint of 4 changes" in page
    assert signed.checkpoint.note.split("\n")[2] in page  # the root hash line
    with app.app_context():
        assert log_signer().verifier_key in page
    assert 'href="/consents/history/3/log/proof.json"' in page
    assert "Measuring how you use our services" in page  # the purpose's title, in words


def test_another_consumers_event_is_not_found(app, client, history):
    sign(app)
    for seq in history["bob"]:
        assert client.get(f"/consents/history/{seq}/log").status_code == 404
        assert client.get(f"/consents/history/{seq}/log/proof.json").status_code == 404
    assert client.get("/consents/history/999/log").status_code == 404
    assert client.get("/consents/history/0/log").status_code == 404
    assert client.get(f"/consents/history/{10**30}/log").status_code == 404


def test_signed_out_the_page_asks_to_sign_in(app, history):
    response = app.test_client().get(f"/consents/history/{history['alice'][0]}/log")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_the_downloaded_proof_verifies_against_its_checkpoint(app, client, history, db_session):
    sign(app)
    for seq in history["alice"]:
        response = client.get(f"/consents/history/{seq}/log/proof.json")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="consent-log-proof-{seq}.json"'
        )
        proof = response.get_json()
        assert (proof["seq"], proof["index"], proof["size"]) == (seq, seq - 1, 4)
        stored = next(e for e in events_of(db_session) if e.seq == seq)
        assert proof["event_hash"] == bytes(stored.hash).hex()
        assert proof["event_id"] == stored.event_id
        checkpoint = note.parse_checkpoint(
            note.open_note(proof["checkpoint"], note.parse_verifier_key(proof["verifier_key"]))
        )
        assert checkpoint.size == proof["size"]
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        leaf = merkle.leaf_hash(bytes.fromhex(proof["event_hash"]))
        assert merkle.verify_inclusion(proof["index"], proof["size"], leaf, hashes, checkpoint.root)
        # one wrong hash and it no longer leads to the root
        forged = [bytes(32), *hashes[1:]]
        assert not merkle.verify_inclusion(seq - 1, 4, leaf, forged, checkpoint.root)


def test_the_proof_leads_to_the_latest_checkpoint_not_the_first(
    app, client, history, db_session, alice, notary, change
):
    first = sign(app)
    analytics = purpose_of(db_session, "aurore-automobiles", "analytics")
    service.withdraw(db_session, notary, alice, analytics, change=change())
    db_session.commit()
    latest = sign(app)
    assert first is not None
    assert latest is not None
    seq = history["alice"][0]
    page = text_of(client.get(f"/consents/history/{seq}/log"))
    assert "Verified." in page
    assert "first included in the checkpoint of 4 changes" in page
    assert "The latest checkpoint covers 5 changes" in page
    proof = client.get(f"/consents/history/{seq}/log/proof.json").get_json()
    assert proof["size"] == 5
    assert proof["checkpoint"] == latest.checkpoint.note


def test_an_event_after_the_latest_checkpoint_waits_for_the_next(
    app, client, history, db_session, alice, notary, change
):
    sign(app)
    analytics = purpose_of(db_session, "aurore-automobiles", "analytics")
    service.withdraw(db_session, notary, alice, analytics, change=change())
    db_session.commit()
    seq = events_of(db_session, alice)[-1].seq
    response = client.get(f"/consents/history/{seq}/log")
    assert response.status_code == 200
    page = text_of(response)
    assert "Not yet: this change is not in a signed checkpoint yet." in page
    assert re.search(r"within \d+ minutes?\.", page)
    assert "Verified." not in page
    assert client.get(f"/consents/history/{seq}/log/proof.json").status_code == 404


def test_before_any_checkpoint_every_event_waits(app, client, history):
    for seq in history["alice"]:
        page = text_of(client.get(f"/consents/history/{seq}/log"))
        assert "Not yet" in page


def test_the_wait_is_taken_from_the_schedule_setting(app, client, history):
    app.config["SCHEDULE_CHECKPOINT"] = "off"
    try:
        page = text_of(client.get(f"/consents/history/{history['alice'][0]}/log"))
    finally:
        app.config["SCHEDULE_CHECKPOINT"] = "*/5 * * * *"
    assert "It will be in the next checkpoint that the portal signs." in page


@pytest.mark.parametrize(
    ("schedule", "now", "minutes"),
    [
        ("*/5 * * * *", datetime(2026, 12, 3, 10, 3, 30, tzinfo=UTC), 3),  # 10:05, + 1
        ("*/5 * * * *", datetime(2026, 12, 3, 10, 5, 0, tzinfo=UTC), 6),  # 10:10 (10:05 ran)
        ("* * * * *", datetime(2026, 12, 3, 10, 5, 59, tzinfo=UTC), 2),
        ("0 3 * * *", datetime(2026, 12, 3, 2, 58, 0, tzinfo=UTC), 3),
        ("0 3 * * *", datetime(2026, 12, 3, 3, 0, 1, tzinfo=UTC), 24 * 60 + 1),
        ("off", datetime(2026, 12, 3, 10, 0, tzinfo=UTC), None),
        ("", datetime(2026, 12, 3, 10, 0, tzinfo=UTC), None),
    ],
)
def test_minutes_to_the_next_checkpoint(schedule, now, minutes):
    assert event_proof.minutes_to_next_checkpoint(schedule, now) == minutes


def test_a_checkpoint_that_does_not_verify_is_said_plainly(app, db_session, history, alice):
    """A proof checked against another key (as if the checkpoint were forged) is not
    "verified"; the page then says so in words."""
    sign(app)
    with app.app_context():
        real_key = log_signer().verifier_key
    other = note.verifier_key("localhost/consent-log", bytes(32))
    seq = history["alice"][0]
    assert event_proof.event_in_log(db_session, alice.subject_key, seq, real_key).verified
    assert not event_proof.event_in_log(db_session, alice.subject_key, seq, other).verified


def test_the_page_is_in_french_too(app, client, history, alice, db_session):
    sign(app)
    alice.locale = "fr"
    db_session.commit()
    response = client.get(
        f"/consents/history/{history['alice'][0]}/log", headers={"Accept-Language": "fr"}
    )
    assert response.status_code == 200
    assert '<html lang="fr"' in response.get_data(as_text=True)
