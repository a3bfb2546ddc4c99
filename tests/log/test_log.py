"""The public log over the ledger: the tree kept with each append, signed checkpoints
(checked by a verifier written here from the C2SP texts), the public endpoints, the
brands as witnesses, and tampering caught at the right place."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import Flask
from sqlalchemy import Connection, select, text, update
from sqlalchemy.orm import Session

from tests.consent.conftest import events_of, purpose_of
from tests.consent.test_ledger_integrity import triggers_off
from vrm_portal.brands.models import BrandChange
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import ConsentEvent
from vrm_portal.extensions import db
from vrm_portal.jobs.models import Job, JobStatus
from vrm_portal.log import merkle
from vrm_portal.log import service as log_service
from vrm_portal.log.models import LogCheckpoint, LogNode
from vrm_portal.log.signing import log_signer

pytestmark = pytest.mark.usefixtures("catalogue")


@pytest.fixture
def events(db_session: Session, make_account, notary, change) -> list[ConsentEvent]:
    """Seven committed events from two consumers."""
    alice = make_account()
    bob = make_account("bob@example.com")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    analytics = purpose_of(db_session, "aurore-automobiles", "analytics")
    service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
    service.grant(db_session, notary, bob, analytics, shown_version=1, change=change())
    service.withdraw(db_session, notary, alice, sms, change=change())
    service.grant(db_session, notary, alice, analytics, shown_version=1, change=change())
    service.withdraw(db_session, notary, bob, analytics, change=change())
    service.grant(db_session, notary, bob, sms, shown_version=1, change=change())
    service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
    db_session.commit()
    return events_of(db_session)


def _sign(app: Flask) -> log_service.Signed | None:
    with app.app_context():
        signed = log_service.sign_checkpoint(db.session, log_signer(), utcnow())
        db.session.commit()
        return signed


# ---- an independent checkpoint verifier, from the C2SP signed-note and tlog-checkpoint
# texts (it does not call the portal's code) -------------------------------------------


def c2sp_verify(note_text: str, vkey: str) -> tuple[str, int, bytes, list[str]]:
    name, key_hash, key_b64 = vkey.strip().split("+", 2)
    key_data = base64.b64decode(key_b64)
    assert key_data[0] == 0x01, "Ed25519 verifier keys start with the byte 0x01"
    public_key = key_data[1:]
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public_key).digest()[:4]
    assert key_id.hex() == key_hash
    body, _, signatures = note_text.rpartition("\n\n")
    body += "\n"
    verified = False
    for line in signatures.rstrip("\n").split("\n"):
        assert line.startswith("\u2014 ")
        signer, stamp = line[2:].rsplit(" ", 1)
        blob = base64.b64decode(stamp)
        if signer == name and blob[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(public_key).verify(blob[4:], body.encode())
            verified = True
    assert verified, "no signature by the verifier key"
    origin, size, root, *extensions = body.split("\n")[:-1]
    return origin, int(size), base64.b64decode(root), extensions


def reference_root(event_hashes: list[bytes]) -> bytes:
    """RFC 9162's MTH over leaf inputs, computed here from scratch."""

    def mth(d: list[bytes]) -> bytes:
        if len(d) == 1:
            return hashlib.sha256(b"\x00" + d[0]).digest()
        k = 1
        while k * 2 < len(d):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()

    return mth(event_hashes)


# ---- the tree and the checkpoints --------------------------------------------------


def test_the_tree_is_kept_with_each_append(app, connection, db_session, events):
    hashes = [bytes(e.hash) for e in events]
    nodes = db_session.scalars(select(LogNode).where(LogNode.level == 0).order_by(LogNode.idx))
    assert [bytes(n.hash) for n in nodes] == [merkle.leaf_hash(h) for h in hashes]
    # 7 leaves: complete subtrees of 2 (3 of them) and 4 (1) besides the leaves
    assert db_session.scalar(select(text("count(*)")).select_from(LogNode.__table__)) == 11
    signed = _sign(app)
    assert signed is not None
    assert bytes(signed.checkpoint.root) == reference_root(hashes)


def test_a_checkpoint_verifies_with_an_independent_c2sp_verifier(app, client, events):
    _sign(app)
    note_text = client.get("/log/checkpoint").get_data(as_text=True)
    vkey = client.get("/log/vkey").get_data(as_text=True)
    origin, size, root, extensions = c2sp_verify(note_text, vkey)
    assert origin == "localhost/consent-log"
    assert size == len(events)
    assert root == reference_root([bytes(e.hash) for e in events])
    assert extensions[0].startswith("vrm-time ")
    # a single changed byte breaks it
    forged = note_text.replace(f"\n{size}\n", f"\n{size + 1}\n")
    with pytest.raises(InvalidSignature):
        c2sp_verify(forged, vkey)


def test_no_checkpoint_without_growth_and_each_extends_the_last(
    app, db_session, events, notary, change, make_account
):
    first = _sign(app)
    assert first is not None
    assert _sign(app) is None  # nothing new
    carol = make_account("carol@example.com")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    service.grant(db_session, notary, carol, sms, shown_version=1, change=change())
    db_session.commit()
    second = _sign(app)
    assert second is not None
    assert second.checkpoint.size == len(events) + 1


def test_every_brand_hears_of_each_checkpoint(app, client, db_session, events):
    signed = _sign(app)
    assert signed is not None
    entries = db_session.scalars(
        select(BrandChange).where(BrandChange.kind == "log.checkpoint")
    ).all()
    assert len(entries) == signed.brands_told == 3
    assert {entry.data["size"] for entry in entries} == {len(events)}
    assert all(entry.data["checkpoint"] == signed.checkpoint.note for entry in entries)


# ---- the public endpoints -----------------------------------------------------------


def test_every_events_inclusion_proof_leads_to_the_checkpoint(app, client, events):
    _sign(app)
    root = base64.b64decode(client.get("/log/checkpoint").get_data(as_text=True).split("\n")[2])
    for index, event in enumerate(events):
        response = client.get(f"/log/proof/inclusion?index={index}&size={len(events)}")
        assert response.status_code == 200
        assert response.headers["Cache-Control"].startswith("public")
        document = response.get_json()
        assert (document["index"], document["size"]) == (index, len(events))
        proof = [base64.b64decode(h) for h in document["hashes"]]
        leaf = merkle.leaf_hash(bytes(event.hash))
        assert merkle.verify_inclusion(index, len(events), leaf, proof, root)
        # what the proof reveals is hashes only
        assert event.body not in response.get_data(as_text=True)


def test_consistency_between_two_checkpoints(
    app, client, db_session, events, notary, change, make_account
):
    first = _sign(app)
    dave = make_account("dave@example.com")
    analytics = purpose_of(db_session, "aurore-automobiles", "analytics")
    for _ in range(5):
        service.grant(db_session, notary, dave, analytics, shown_version=1, change=change())
        service.withdraw(db_session, notary, dave, analytics, change=change())
    db_session.commit()
    second = _sign(app)
    assert first is not None
    assert second is not None
    old, new = first.checkpoint.size, second.checkpoint.size
    response = client.get(f"/log/proof/consistency?from={old}&to={new}")
    document = response.get_json()
    assert (document["from"], document["to"]) == (old, new)
    proof = [base64.b64decode(h) for h in document["hashes"]]
    assert merkle.verify_consistency(
        old, new, bytes(first.checkpoint.root), bytes(second.checkpoint.root), proof
    )
    listing = client.get("/log/checkpoints?after=0").get_json()
    assert [c["size"] for c in listing["checkpoints"]] == [old, new]
    assert listing["next_after"] is None
    assert client.get(f"/log/checkpoints?after={old}").get_json()["checkpoints"][0]["size"] == new


def test_plain_text_and_cache_headers(app, client, events):
    _sign(app)
    response = client.get("/log/checkpoint")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=30"
    vkey = client.get("/log/vkey")
    assert vkey.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert vkey.get_data(as_text=True).startswith("localhost/consent-log+")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/log/proof/inclusion?size=3", "index"),
        ("/log/proof/inclusion?index=-1&size=3", "index"),
        ("/log/proof/inclusion?index=abc&size=3", "index"),
        ("/log/proof/inclusion?index=1&size=0", "size"),
        ("/log/proof/inclusion?index=1&size=99", "size"),
        ("/log/proof/inclusion?index=7&size=7", "index"),
        ("/log/proof/inclusion?index=1&size=99999999999999999999", "size"),
        ("/log/proof/consistency?from=0&to=3", "from"),
        ("/log/proof/consistency?from=5&to=3", "from"),
        ("/log/proof/consistency?from=1&to=8", "to"),
        ("/log/checkpoints?after=x", "after"),
    ],
)
def test_bad_or_out_of_range_numbers_get_a_precise_400(app, client, events, query, field):
    _sign(app)
    response = client.get(query)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["errors"][0]["field"] == field
    assert field in problem["detail"]


def test_before_the_first_checkpoint_the_log_says_so(client, events):
    response = client.get("/log/checkpoint")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert client.get("/log/proof/inclusion?index=0&size=1").status_code == 404


# ---- tampering ------------------------------------------------------------------------


def test_an_event_altered_after_a_checkpoint_is_reported_at_its_index(
    app, connection: Connection, events
):
    _sign(app)
    assert log_service.verify_log(connection).ok
    triggers_off(connection)
    table = ConsentEvent.__table__
    target = events[3]
    body = target.body.replace('"action":"granted"', '"action":"withdrawn"')
    assert body != target.body
    # the body, its hash and every later link recomputed: only the tree and the
    # checkpoint still remember the original
    connection.execute(
        update(table)
        .where(table.c.seq == target.seq)
        .values(body=body, hash=hashlib.sha256(body.encode()).digest())
    )
    result = log_service.verify_log(connection)
    assert not result.ok
    assert result.first_bad_index == 3
    assert "leaf" in (result.problem or "")


def test_a_rewritten_leaf_node_is_reported_at_its_index(app, connection: Connection, events):
    _sign(app)
    nodes = LogNode.__table__
    connection.execute(
        update(nodes).where(nodes.c.level == 0, nodes.c.idx == 2).values(hash=bytes(32))
    )
    result = log_service.verify_log(connection)
    assert not result.ok
    assert result.first_bad_index == 2


def test_a_tree_that_no_longer_extends_the_checkpoint_is_not_signed(
    app, connection: Connection, db_session, events, make_account, notary, change
):
    _sign(app)
    nodes = LogNode.__table__
    # the subtree of the first four leaves, rewritten
    connection.execute(
        update(nodes).where(nodes.c.level == 2, nodes.c.idx == 0).values(hash=bytes(32))
    )
    frank = make_account("frank@example.com")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    service.grant(db_session, notary, frank, sms, shown_version=1, change=change())
    db_session.commit()
    with app.app_context(), pytest.raises(log_service.LogInconsistent, match="rewritten"):
        log_service.sign_checkpoint(db.session, log_signer(), utcnow())


def test_the_scheduled_job_refuses_loudly_and_alerts_the_privacy_office(
    app, connection: Connection, db_session, events, make_account, mailbox, notary, change
):
    from vrm_portal.accounts.models import StaffRole
    from vrm_portal.jobs.engine import enqueue_scheduled

    make_account("dpo@example.com", role=StaffRole.DPO)
    _sign(app)
    # a rewrite of history: an old checkpoint's root no longer matches the tree
    checkpoints = LogCheckpoint.__table__
    connection.execute(update(checkpoints).values(root=bytes(32)))
    erin = make_account("erin@example.com")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    service.grant(db_session, notary, erin, sms, shown_version=1, change=change())
    db_session.commit()
    enqueue_scheduled(app.extensions["vrm_jobs"], "schedule.checkpoint")
    job = db_session.scalars(select(Job).where(Job.kind == "schedule.checkpoint")).one()
    assert job.status == JobStatus.FAILED
    assert "checkpoint refused" in (job.last_error or "")
    alert = mailbox.wait_for("dpo@example.com")
    assert "consistency check" in alert["Subject"]
