"""Proof bundles: built for one consumer (all brands, one brand, one purpose), checked by
the shipped verify.py in a separate Python process, and caught when any byte of any
file is changed; the ``vrm proof-bundle`` command and the consumer's download button."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tests.conftest import submit
from tests.consent.conftest import alice, purpose_of
from vrm_portal.accounts.models import Account
from vrm_portal.brands.service import pairwise_id_for
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.catalogue import PurposeText, content_hash
from vrm_portal.consent.models import PurposeVersion
from vrm_portal.consent.receipts import load_key_file
from vrm_portal.consent.service import Notary
from vrm_portal.extensions import db
from vrm_portal.log import bundle
from vrm_portal.log import service as log_service
from vrm_portal.log.signing import log_signer
from vrm_portal.requests.models import DataRequest

pytestmark = pytest.mark.usefixtures("catalogue")

__all__ = ["alice"]

SMS = ("maison-berlingot", "sms-offers")
ANALYTICS = ("aurore-automobiles", "analytics")
PARTNERS = ("maison-berlingot", "partner-sharing")


def sign(app: Flask) -> log_service.Signed | None:
    with app.app_context():
        signed = log_service.sign_checkpoint(db.session, log_signer(), utcnow())
        db.session.commit()
        return signed


@pytest.fixture
def carol(db_session: Session, make_account, notary, change) -> Account:
    """Carol's consents in two brands, with another consumer's events in between."""
    carol = make_account("carol@example.com")
    dave = make_account("dave@example.com")
    sms = purpose_of(db_session, *SMS)
    analytics = purpose_of(db_session, *ANALYTICS)
    partners = purpose_of(db_session, *PARTNERS)
    service.grant(db_session, notary, carol, sms, shown_version=1, change=change())
    service.grant(db_session, notary, carol, partners, shown_version=1, change=change())
    service.grant(db_session, notary, dave, sms, shown_version=1, change=change())
    service.grant(db_session, notary, carol, analytics, shown_version=1, change=change())
    service.withdraw(db_session, notary, carol, sms, change=change(language="fr"))
    service.withdraw(db_session, notary, dave, sms, change=change())
    db_session.commit()
    return carol


def build(
    app: Flask, session: Session, subject_key: str, keys: bundle.Keys | None = None, **filters
) -> tuple[bytes, bundle.BundleSummary]:
    with app.app_context():
        keys = keys or bundle.current_keys()
    out = io.BytesIO()
    summary = bundle.write_bundle(
        session,
        out,
        subject_key=subject_key,
        keys=keys,
        portal="http://localhost",
        now=utcnow(),
        **filters,
    )
    return out.getvalue(), summary


def extract(data: bytes, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
    return folder


def run_verify(folder: Path) -> tuple[int, list[str]]:
    """``python3 verify.py`` in the bundle's folder, as the README says."""
    result = subprocess.run(
        [sys.executable, "verify.py"], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert not result.stderr, result.stderr
    return result.returncode, result.stdout.splitlines()


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


# ---- what a bundle holds, and verify.py's verdict --------------------------------------


def test_a_bundle_of_two_brands_verifies_offline(app, db_session, carol, tmp_path):
    sign(app)
    data, summary = build(app, db_session, carol.subject_key)
    folder = extract(data, tmp_path / "bundle")
    code, lines = run_verify(folder)
    assert code == 0, "\n".join(lines)
    assert lines
    assert all(line.startswith("OK ") for line in lines), "\n".join(lines)

    manifest = manifest_of(folder)
    assert manifest["subject_key"] == carol.subject_key
    assert manifest["filter"] == {"brand": None, "purpose": None}
    seqs = [e["seq"] for e in manifest["events"]]
    assert seqs == [1, 2, 4, 5]  # carol's only: dave's 3 and 6 are not in it
    assert summary.events == summary.proven == 4
    assert summary.pending == 0
    assert {e["brand"] for e in manifest["events"]} == {SMS[0], ANALYTICS[0]}
    for seq in seqs:
        assert (folder / f"events/{seq}.json").is_file()
        assert (folder / f"receipts/{seq}.jws").read_text().count(".") == 2
        proof = json.loads((folder / f"proofs/{seq}.json").read_text())
        assert (proof["index"], proof["size"]) == (seq - 1, 6)
    listed = set(manifest["files"])
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert present - listed == {"manifest.json"}
    assert listed <= present
    # one line per check, naming it: the chain link of 2 to 1 (both carol's) is checked
    assert "OK event 2 chain: linked to event 1" in lines
    assert any(line.startswith("OK event 4 chain: links to event 3") for line in lines)
    assert any(
        line.startswith("OK checkpoint.txt: signed by localhost/consent-log") for line in lines
    )
    assert lines[-1].startswith("OK all ")


def test_events_and_receipts_are_exactly_as_stored(app, db_session, carol, tmp_path):
    from tests.consent.conftest import events_of
    from vrm_portal.consent.models import ConsentReceipt

    sign(app)
    folder = extract(build(app, db_session, carol.subject_key)[0], tmp_path / "b")
    for stored in events_of(db_session, carol):
        assert (folder / f"events/{stored.seq}.json").read_bytes() == stored.body.encode()
        receipt = db_session.scalar(
            select(ConsentReceipt.jws).where(ConsentReceipt.event_seq == stored.seq)
        )
        assert (folder / f"receipts/{stored.seq}.jws").read_text() == receipt
    with app.app_context():
        assert (folder / "vkey.txt").read_text() == log_signer().verifier_key + "\n"
    assert (folder / "checkpoint.txt").read_text() == log_service.latest_checkpoint(db_session).note
    assert (folder / "verify.py").read_bytes() == bundle.VERIFIER_SOURCE.read_bytes()


def test_notice_files_reproduce_the_catalogue_content_hash(app, db_session, carol, tmp_path):
    """The notice files and the manifest give back exactly what catalogue.content_hash
    hashed when the version was published."""
    sign(app)
    folder = extract(build(app, db_session, carol.subject_key)[0], tmp_path / "b")
    notices = manifest_of(folder)["notices"]
    assert {(n["brand"], n["purpose"], n["version"]) for n in notices} == {
        (*SMS, 1),
        (*PARTNERS, 1),
        (*ANALYTICS, 1),
    }
    for notice in notices:
        texts = {}
        for lang in ("en", "fr"):
            content = (folder / notice["texts"][lang]).read_text(encoding="utf-8")
            title = notice[f"title_{lang}"]
            assert content.startswith(f"{title}\n\n")
            texts[f"title_{lang}"] = title
            texts[f"text_{lang}"] = content[len(title) + 2 : -1]
        assert content_hash(PurposeText(**texts)) == notice["content_hash"]
        stored = db_session.scalars(
            select(PurposeVersion).where(PurposeVersion.content_hash == notice["content_hash"])
        ).first()
        assert stored is not None
        assert stored.text_fr == texts["text_fr"]


@pytest.mark.parametrize(
    ("filters", "seqs"),
    [
        ({"brand": SMS[0]}, [1, 2, 5]),
        ({"brand": ANALYTICS[0]}, [4]),
        ({"brand": SMS[0], "purpose": SMS[1]}, [1, 5]),
        ({"purpose": "analytics"}, [4]),
    ],
)
def test_a_filtered_bundle_holds_only_what_the_filter_names(
    app, db_session, carol, tmp_path, filters, seqs
):
    sign(app)
    data, summary = build(app, db_session, carol.subject_key, **filters)
    folder = extract(data, tmp_path / "bundle")
    code, lines = run_verify(folder)
    assert code == 0, "\n".join(lines)
    assert all(line.startswith("OK ") for line in lines), "\n".join(lines)
    manifest = manifest_of(folder)
    assert [e["seq"] for e in manifest["events"]] == seqs
    assert manifest["filter"] == {"brand": None, "purpose": None} | filters
    assert sorted(int(p.stem) for p in (folder / "events").iterdir()) == seqs
    assert summary.events == len(seqs)


def test_events_after_the_checkpoint_are_flagged_pending(
    app, db_session, carol, notary, change, tmp_path
):
    sign(app)
    analytics = purpose_of(db_session, *ANALYTICS)
    service.withdraw(db_session, notary, carol, analytics, change=change())
    db_session.commit()
    data, summary = build(app, db_session, carol.subject_key)
    assert (summary.proven, summary.pending) == (4, 1)
    folder = extract(data, tmp_path / "bundle")
    code, lines = run_verify(folder)
    assert code == 3, "\n".join(lines)
    assert not [line for line in lines if line.startswith("FAIL")]
    [pending] = [line for line in lines if line.startswith("PENDING")]
    assert pending.startswith("PENDING event 7 log: not in a signed checkpoint yet")
    entry = manifest_of(folder)["events"][-1]
    assert (entry["seq"], entry["in_checkpoint"], entry["proof"]) == (7, False, None)
    assert not (folder / "proofs/7.json").exists()

    # once the next checkpoint is signed, a new bundle proves it
    sign(app)
    folder = extract(build(app, db_session, carol.subject_key)[0], tmp_path / "again")
    assert run_verify(folder)[0] == 0


def test_before_any_checkpoint_every_event_waits(app, db_session, carol, tmp_path):
    folder = extract(build(app, db_session, carol.subject_key)[0], tmp_path / "bundle")
    code, lines = run_verify(folder)
    assert code == 3
    assert sum(line.startswith("PENDING") for line in lines) == 4
    assert not (folder / "checkpoint.txt").exists()


def test_es256_receipts_verify_with_their_jwks(app, db_session, make_account, change, tmp_path):
    """Receipts may be signed with ECDSA P-256 (ES256): verify.py checks them too."""
    pem = tmp_path / "es256.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signing_key = load_key_file(pem)
    assert signing_key.algorithm == "ES256"
    erin = make_account("erin@example.com")
    notary = Notary(signing_key, "http://localhost")
    sms = purpose_of(db_session, *SMS)
    service.grant(db_session, notary, erin, sms, shown_version=1, change=change())
    service.withdraw(db_session, notary, erin, sms, change=change())
    db_session.commit()
    sign(app)
    with app.app_context():
        signer = log_signer()
    keys = bundle.Keys(signer.origin, signer.verifier_key, {"keys": [signing_key.public_jwk()]})
    folder = extract(build(app, db_session, erin.subject_key, keys)[0], tmp_path / "b")
    code, lines = run_verify(folder)
    assert code == 0, "\n".join(lines)
    assert sum("receipt: signed with the key" in line for line in lines) == 2


# ---- tampering: one changed byte in any file ------------------------------------------


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_one_changed_byte_in_any_file_fails_the_check_that_reads_it(
    app, db_session, carol, tmp_path
):
    """Every file, one at a time, one byte (the middle one) flipped. verify.py itself is
    skipped: a changed checker proves nothing either way (read it, or use your own; the
    bundle's copy is listed in the manifest with its SHA-256). The READMEs are not skipped:
    they are listed with their SHA-256 too, so a change to them is caught."""
    sign(app)
    data, _summary = build(app, db_session, carol.subject_key, brand=SMS[0])
    pristine = extract(data, tmp_path / "pristine")
    names = sorted(p.relative_to(pristine).as_posix() for p in pristine.rglob("*") if p.is_file())
    assert "verify.py" in names
    names.remove("verify.py")
    kinds = {name.split("/")[0] for name in names}
    assert kinds >= {"events", "receipts", "proofs", "notices", "checkpoint.txt", "vkey.txt"}
    assert kinds >= {"jwks.json", "manifest.json", "README.en.txt", "README.fr.txt"}
    for name in names:
        folder = tmp_path / f"flip-{name.replace('/', '_')}"
        shutil.copytree(pristine, folder)
        target = folder / name
        flip(target, len(target.read_bytes()) // 2)
        code, lines = run_verify(folder)
        failures = [line for line in lines if line.startswith("FAIL")]
        assert code in (1, 2), f"{name}: exit {code}\n" + "\n".join(lines)
        assert failures, name
        assert any(name in line for line in failures), f"{name}:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    ("pattern", "check"),
    [
        (r'"subject_key": "(.)', "event 1 body: its subject is not the one manifest.json gives"),
        (r'"brand": "(m)aison-berlingot",\n    "purpose"', "it is not an event of the brand"),
        (r'"size": (\d)', "manifest.json gives the checkpoint another size"),
        (r'"in_checkpoint": (t)rue', "manifest.json"),
        (r'"hash": "(.)', "event 1 body: the body does not hash (SHA-256) to the event's hash"),
        (r'"content_hash": "(.)', "the titles and texts do not hash to the notice's content hash"),
    ],
)
def test_a_changed_byte_in_each_field_of_the_manifest_is_caught(
    app, db_session, carol, tmp_path, pattern, check
):
    sign(app)
    folder = extract(build(app, db_session, carol.subject_key, brand=SMS[0])[0], tmp_path / "b")
    path = folder / "manifest.json"
    match = re.search(pattern, path.read_text(encoding="utf-8"))
    assert match, pattern
    flip(path, len(path.read_text(encoding="utf-8")[: match.start(1)].encode()))
    code, lines = run_verify(folder)
    assert code in (1, 2), "\n".join(lines)
    assert any(line.startswith("FAIL") and check in line for line in lines), "\n".join(lines)


# ---- the operator's command -------------------------------------------------------------


def test_the_proof_bundle_command_finds_the_consumer_three_ways(app, db_session, carol, tmp_path):
    sign(app)
    with app.app_context():
        brand = purpose_of(db_session, *SMS).brand
        pairwise = pairwise_id_for(db_session, carol.id, brand)
    runner = app.test_cli_runner()
    outputs = []
    for option, value in (
        ("--email", "Carol@Example.com"),
        ("--subject-key", carol.subject_key),
        ("--pairwise-id", pairwise),
    ):
        output = tmp_path / f"{option.strip('-')}.zip"
        result = runner.invoke(args=["vrm", "proof-bundle", option, value, "--output", str(output)])
        assert result.exit_code == 0, result.output
        assert "4 event(s)" in result.output
        assert "4 event(s) proven in the checkpoint of size 6" in result.output
        outputs.append(manifest_of(extract(output.read_bytes(), tmp_path / option.strip("-"))))
    assert {m["subject_key"] for m in outputs} == {carol.subject_key}
    assert oct(output.stat().st_mode & 0o777) == "0o600"

    filtered = tmp_path / "filtered.zip"
    result = runner.invoke(
        args=[
            "vrm", "proof-bundle", "--email", "carol@example.com", "--brand", SMS[0],
            "--purpose", SMS[1], "--output", str(filtered), "--json",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert (outcome["events"], outcome["proven"], outcome["pending"]) == (2, 2, 0)
    folder = extract(filtered.read_bytes(), tmp_path / "filtered")
    assert run_verify(folder)[0] == 0


def test_the_command_says_when_events_wait_for_a_checkpoint(app, db_session, carol, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["vrm", "proof-bundle", "--email", carol.email, "--output", str(tmp_path / "b.zip")]
    )
    assert result.exit_code == 0, result.output
    assert "No checkpoint has been signed yet" in result.output
    assert "4 event(s) are newer than the latest checkpoint" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --email, --subject-key and --pairwise-id"),
        (["--email", "a@example.com", "--subject-key", "x"], "exactly one of"),
        (["--email", "nobody@example.com"], "no account has this email address"),
        (["--subject-key", "0" * 32], "no account and no consent event has this subject key"),
        (["--pairwise-id", "nope"], "no brand knows a consumer by this pairwise id"),
        (["--email", "carol@example.com", "--brand", "nope"], "no brand 'nope'"),
        (["--email", "carol@example.com", "--purpose", "nope"], "no purpose 'nope'"),
    ],
)
def test_the_command_refuses_what_it_cannot_find(app, carol, tmp_path, args, message):
    output = tmp_path / "b.zip"
    result = app.test_cli_runner().invoke(
        args=["vrm", "proof-bundle", *args, "--output", str(output)]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert not output.exists()
    assert not list(tmp_path.iterdir())  # no scratch file left either


# ---- the consumer's button ---------------------------------------------------------------


def test_the_consumer_downloads_a_bundle_recorded_as_a_data_request(
    app, client, db_session, alice, notary, change, tmp_path
):
    sms = purpose_of(db_session, *SMS)
    analytics = purpose_of(db_session, *ANALYTICS)
    service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
    service.grant(db_session, notary, alice, analytics, shown_version=1, change=change())
    db_session.commit()
    sign(app)
    page = client.get("/my-data/export/").get_data(as_text=True)
    assert "Download a proof bundle of my consents" in page
    assert 'action="/my-data/proof-bundle"' in page

    response = submit(client, "/my-data/proof-bundle", {}, form_page="/my-data/export/")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="vrm-portal-proof-bundle-'
    )
    folder = extract(response.get_data(), tmp_path / "bundle")
    code, lines = run_verify(folder)
    assert code == 0, "\n".join(lines)
    assert manifest_of(folder)["subject_key"] == alice.subject_key

    recorded = db_session.scalars(
        select(DataRequest).where(DataRequest.account_id == alice.id)
    ).all()
    assert [(r.kind, r.format, r.detail) for r in recorded] == [
        ("export", None, {"download": "proof-bundle"})
    ]
    page = client.get("/my-data/export/").get_data(as_text=True)
    assert "Proof bundle of my consents</td>" in re.sub(r"\s+<", "<", page)
    timeline = client.get("/my-data/?type=requests").get_data(as_text=True)
    assert "Proof bundle of my consents" in timeline


def test_the_bundle_button_needs_csrf_sign_in_and_is_rate_limited(app, client, alice):
    assert client.post("/my-data/proof-bundle").status_code == 400  # no CSRF token
    for _ in range(10):
        response = submit(client, "/my-data/proof-bundle", {}, form_page="/my-data/export/")
        assert response.status_code == 200
    response = submit(client, "/my-data/proof-bundle", {}, form_page="/my-data/export/")
    assert response.status_code == 429
    anonymous = app.test_client()
    assert anonymous.post("/my-data/proof-bundle").status_code in (302, 400)


# ---- flat for a thousand events ------------------------------------------------------------


def test_a_thousand_events_stay_flat(
    app, connection, db_session, make_account, notary, change, tmp_path
):
    """1,000 events: the same few statements whatever the number of events (events,
    receipts and notices in batches), plus one primary-key lookup per tree node a batch's
    proofs need (``tree.NodeStore``), each node once per batch."""
    frank = make_account("frank@example.com")
    sms = purpose_of(db_session, *SMS)
    for _ in range(500):
        service.grant(db_session, notary, frank, sms, shown_version=1, change=change())
        service.withdraw(db_session, notary, frank, sms, change=change())
    db_session.commit()
    sign(app)
    subject_key = frank.subject_key
    nodes: list[tuple[int, int]] = []
    others: list[str] = []

    def count(_conn, _cursor, statement, parameters, *_args) -> None:
        if statement.lstrip().startswith("SELECT log_nodes.hash"):
            nodes.append(tuple(parameters.values() if isinstance(parameters, dict) else parameters))
        else:
            others.append(statement)

    event.listen(connection, "before_cursor_execute", count)
    try:
        data, summary = build(app, db_session, subject_key)
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert summary.events == summary.proven == 1000
    # the checkpoint, the events (streamed), 2 batches of receipts, the notices
    assert len(others) <= 6, others
    # 1,000 leaves: at most 2,000 distinct complete nodes; a top node at most once a batch
    assert len(nodes) <= 2 * 1000 + 2 * 11
    assert max(Counter(nodes).values()) <= 2
    folder = extract(data, tmp_path / "bundle")
    code, lines = run_verify(folder)
    assert code == 0, "\n".join(line for line in lines if not line.startswith("OK"))
