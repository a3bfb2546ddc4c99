"""Receipt key rotation: ``vrm rotate-receipt-key`` makes a new key current, keeps the
previous ones' public halves in the JWKS, and every receipt ever signed still verifies."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from joserfc import jws
from joserfc.errors import BadSignatureError, InvalidKeyIdError
from joserfc.jwk import KeySet, OKPKey, import_key

from config import ConfigError, load_config
from tests.consent.conftest import purpose_of
from vrm_portal.consent import service, signing
from vrm_portal.consent.receipts import generate_key_file, load_key_file
from vrm_portal.consent.service import IssuedReceipt, Notary

ROOT = Path(__file__).resolve().parents[2]
KEY_SETTING = "RECEIPT_SIGNING_KEY_FILE"
RETIRED_SETTING = "RECEIPT_RETIRED_KEYS_FILE"


@dataclass(frozen=True)
class KeyFiles:
    key: Path
    retired: Path


@pytest.fixture
def key_files(app: Flask, tmp_path: Path) -> Iterator[KeyFiles]:
    """The app under test on receipt key files of its own, as a fresh deployment; the
    suite's keys are put back afterwards."""
    saved = {name: app.config[name] for name in (KEY_SETTING, RETIRED_SETTING)}
    files = KeyFiles(
        tmp_path / "keys" / "receipts.pem", tmp_path / "keys" / "receipts.retired.json"
    )
    generate_key_file(files.key)
    app.config.update({KEY_SETTING: str(files.key), RETIRED_SETTING: str(files.retired)})
    restart(app)
    try:
        yield files
    finally:
        app.config.update(saved)
        restart(app)


def restart(app: Flask) -> None:
    """What a process restart does to the receipt keys: read both files again."""
    signing.init_app(app)


def notary(app: Flask) -> Notary:
    with app.app_context():
        return signing.current_notary()


def rotate(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["vrm", "rotate-receipt-key", *args])


def header_of(token: str) -> dict[str, Any]:
    return dict(jws.extract_compact(token.encode()).headers())


def jwks_of(client) -> dict[str, Any]:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def download(client, receipt: IssuedReceipt) -> str:
    response = client.get(f"/consents/receipts/{receipt.receipt_id}.jwt")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def documented_verifier() -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """``check_receipt`` of docs/consent-log.md, run as written there: the key named by
    ``kid``, or for a receipt without one, each key of the receipt's algorithm in turn."""
    section = (ROOT / "docs" / "consent-log.md").read_text().split("## Receipts and their keys")[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/consent-log.md", "exec"), namespace)  # noqa: S102 -- our docs
    verifier: Callable[[str, dict[str, Any]], dict[str, Any]] = namespace["check_receipt"]
    return verifier


check_receipt = documented_verifier()


def grant(db_session, alice, change, app: Flask, purpose: str = "sms-offers") -> IssuedReceipt:
    """Alice gives a consent, signed by the key the app loaded; returns its receipt."""
    found = purpose_of(db_session, "maison-berlingot", purpose)
    result = service.grant(db_session, notary(app), alice, found, shown_version=1, change=change())
    db_session.commit()
    assert result.receipt is not None
    return result.receipt


def test_a_receipt_names_its_key_by_the_rfc_7638_thumbprint(
    app, client, db_session, alice, change, key_files
):
    receipt = grant(db_session, alice, change, app)
    [jwk] = jwks_of(client)["keys"]
    # RFC 7638 §3: SHA-256 of the required members, sorted, without whitespace.
    members = json.dumps({name: jwk[name] for name in ("crv", "kty", "x")}, separators=(",", ":"))
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest())
    assert header_of(receipt.jws)["kid"] == jwk["kid"] == thumbprint.rstrip(b"=").decode()
    assert jwk["kid"] == load_key_file(key_files.key).kid


def test_after_a_rotation_old_receipts_verify_and_new_ones_use_the_new_key(
    app, client, db_session, alice, change, key_files
):
    old = grant(db_session, alice, change, app)
    old_kid = header_of(old.jws)["kid"]
    old_pem = key_files.key.read_bytes()

    result = rotate(app)
    assert result.exit_code == 0, result.output
    new_kid = load_key_file(key_files.key).kid
    assert new_kid != old_kid
    assert new_kid in result.output
    assert old_kid in result.output
    assert "Restart every portal process" in result.output
    # Until it restarts, a process keeps the key it loaded.
    assert [key["kid"] for key in jwks_of(client)["keys"]] == [old_kid]

    restart(app)
    jwks = jwks_of(client)
    assert [key["kid"] for key in jwks["keys"]] == [new_kid, old_kid]
    assert all(key["alg"] == "Ed25519" and key["use"] == "sig" for key in jwks["keys"])
    assert all("d" not in key for key in jwks["keys"])
    keys = KeySet.import_key_set(jwks)

    # The consumer still downloads the old receipt, and it verifies with the JWKS.
    token = download(client, old)
    assert token == old.jws
    verified = jws.deserialize_compact(token, keys, algorithms=["Ed25519"])
    assert json.loads(verified.payload)["consentReceiptID"] == old.receipt_id
    assert check_receipt(token, jwks)["consentReceiptID"] == old.receipt_id
    history = client.get("/consents/history")
    assert history.status_code == 200
    assert f"/consents/receipts/{old.receipt_id}.jwt" in history.get_data(as_text=True)

    # A new receipt is signed with the new key, and only the new key verifies it.
    new = service.withdraw(
        db_session,
        notary(app),
        alice,
        purpose_of(db_session, "maison-berlingot", "sms-offers"),
        change=change(),
    ).receipt
    db_session.commit()
    assert new is not None
    assert header_of(new.jws)["kid"] == new_kid
    verified = jws.deserialize_compact(download(client, new), keys, algorithms=["Ed25519"])
    payload = json.loads(verified.payload)
    assert payload["consentStatus"] == "withdrawn"
    old_key = import_key(jwks["keys"][1])
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(new.jws, old_key, algorithms=["Ed25519"])

    # The retired file holds the old key's public half only; its private half is gone.
    retired = json.loads(key_files.retired.read_text())
    assert retired == {"keys": [jwks["keys"][1]]}
    assert old_pem not in key_files.key.read_bytes()
    assert stat.S_IMODE(key_files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_files.retired.stat().st_mode) == 0o644
    assert [path.name for path in key_files.key.parent.iterdir() if path.name.startswith(".")] == []


def test_the_receipt_page_still_calls_an_old_receipt_valid(
    app, client, db_session, alice, change, key_files
):
    old = grant(db_session, alice, change, app)
    assert rotate(app).exit_code == 0
    restart(app)
    page = client.get(f"/consents/receipts/{old.receipt_id}")
    assert page.status_code == 200
    assert 'data-verdict="valid"' in page.get_data(as_text=True)


def test_every_retired_key_stays_newest_first(app, client, db_session, alice, change, key_files):
    receipts = [grant(db_session, alice, change, app)]
    for purpose in ("analytics", "personalised-offers"):
        assert rotate(app).exit_code == 0
        restart(app)
        receipts.append(grant(db_session, alice, change, app, purpose))
    jwks = jwks_of(client)
    kids = [header_of(receipt.jws)["kid"] for receipt in receipts]
    assert [key["kid"] for key in jwks["keys"]] == kids[::-1]
    keys = KeySet.import_key_set(jwks)
    for receipt in receipts:
        token = download(client, receipt)
        payload = json.loads(jws.deserialize_compact(token, keys, algorithms=["Ed25519"]).payload)
        assert payload["consentReceiptID"] == receipt.receipt_id


def test_a_receipt_without_kid_verifies_by_trying_the_keys_of_its_algorithm(app, client, key_files):
    """The portal always wrote a kid; a receipt without one (another tool, an older
    format) is checked against each key of its algorithm."""
    retired_key = load_key_file(key_files.key)
    token = jws.serialize_compact(
        {"alg": "Ed25519", "typ": "JWT"}, b'{"jti": "no-kid"}', retired_key.key, ["Ed25519"]
    )
    assert rotate(app).exit_code == 0
    restart(app)
    jwks = jwks_of(client)
    assert len(jwks["keys"]) == 2
    with pytest.raises(InvalidKeyIdError):  # no kid, two keys: joserfc will not guess
        jws.deserialize_compact(token, KeySet.import_key_set(jwks), algorithms=["Ed25519"])
    assert check_receipt(token, jwks) == {"jti": "no-kid"}
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError, match="no key of the JWKS verifies"):
        check_receipt(forged, jwks)


def test_a_rotation_may_change_the_algorithm(app, client, db_session, alice, change, key_files):
    old = grant(db_session, alice, change, app)
    result = rotate(app, "--algorithm", "ES256")
    assert result.exit_code == 0, result.output
    assert "(ES256)" in result.output
    restart(app)
    jwks = jwks_of(client)
    assert [(key["kty"], key["alg"]) for key in jwks["keys"]] == [
        ("EC", "ES256"),
        ("OKP", "Ed25519"),
    ]
    new = grant(db_session, alice, change, app, "analytics")
    assert header_of(new.jws)["alg"] == "ES256"
    keys = KeySet.import_key_set(jwks)
    for receipt in (old, new):
        token = download(client, receipt)
        jws.deserialize_compact(token, keys, algorithms=["Ed25519", "ES256"])
        assert check_receipt(token, jwks)["consentReceiptID"] == receipt.receipt_id
    # The next rotation keeps the current algorithm.
    assert rotate(app).exit_code == 0
    assert load_key_file(key_files.key).algorithm == "ES256"


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_an_unreadable_key_file_stops_the_rotation_in_one_line(app, key_files):
    key_files.key.write_text("not a key\n")
    line = _one_line_error(rotate(app))
    assert line.startswith(f"Error: cannot read the receipt signing key {key_files.key}: ")
    assert key_files.key.read_text() == "not a key\n"
    assert not key_files.retired.exists()

    key_files.key.unlink()
    line = _one_line_error(rotate(app))
    assert "cannot read the receipt signing key" in line
    assert "No such file or directory" in line


def test_a_retired_keys_file_that_cannot_be_written_changes_nothing(app, key_files, tmp_path):
    app.config[RETIRED_SETTING] = str(tmp_path / "missing-folder" / "retired.json")
    before = key_files.key.read_bytes()
    line = _one_line_error(rotate(app))
    assert line == (
        f"Error: cannot write {tmp_path / 'missing-folder' / 'retired.json'}: "
        "No such file or directory; nothing changed"
    )
    assert key_files.key.read_bytes() == before


def _public_jwk(**changes: Any) -> dict[str, Any]:
    key = OKPKey.generate_key("Ed25519")
    jwk: dict[str, Any] = dict(key.as_dict(private=False))
    jwk.update({"kid": key.thumbprint(), "alg": "Ed25519", "use": "sig"})
    if changes.pop("private", False):
        jwk["d"] = key.as_dict(private=True)["d"]
    jwk.update(changes)
    return jwk


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ('[{"kty": "OKP"}]', 'must be a JWKS: {"keys": [...]}'),
        (json.dumps({"keys": [_public_jwk(private=True)]}), "is a private key"),
        (json.dumps({"keys": [_public_jwk(kid="my-old-key")]}), "kid must be the key's"),
        (json.dumps({"keys": [_public_jwk(alg="HS256")]}), "must be an Ed25519 (OKP) key"),
        (json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}), "Ed25519"),
        (json.dumps({"keys": [_public_jwk(x="!!")]}), "not a usable public key"),
    ],
    ids=["not-json", "not-a-jwks", "private-key", "wrong-kid", "wrong-alg", "secret", "bad-x"],
)
def test_a_bad_retired_keys_file_is_refused_in_one_line(app, key_files, content, message):
    key_files.retired.write_text(content)
    with pytest.raises(ConfigError) as refused:
        restart(app)
    assert str(refused.value).startswith(f"VRM_RECEIPT_RETIRED_KEYS_FILE: {key_files.retired}")
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    # The rotation refuses it too, and leaves the key alone.
    before = key_files.key.read_bytes()
    assert message in _one_line_error(rotate(app))
    assert key_files.key.read_bytes() == before


def test_the_retired_keys_file_defaults_to_a_file_beside_the_key():
    config = load_config({KEY_SETTING: "/etc/vrm/receipts.pem", RETIRED_SETTING: None})
    assert config[RETIRED_SETTING] == "/etc/vrm/receipts.retired.json"
    config = load_config({KEY_SETTING: "/etc/vrm/receipt-key", RETIRED_SETTING: None})
    assert config[RETIRED_SETTING] == "/etc/vrm/receipt-key.retired.json"
    config = load_config({KEY_SETTING: "/etc/vrm/k.pem", RETIRED_SETTING: "/srv/jwks.json"})
    assert config[RETIRED_SETTING] == "/srv/jwks.json"


def test_the_retired_keys_file_cannot_be_the_key_file():
    with pytest.raises(ConfigError, match=r"^VRM_RECEIPT_RETIRED_KEYS_FILE must name another"):
        load_config({KEY_SETTING: "/etc/vrm/k.pem", RETIRED_SETTING: "/etc/vrm/k.pem"})


def test_the_command_refuses_to_start_on_an_unreadable_key_in_one_line(tmp_path):
    """As an operator types it: the app does not start, and says which setting and why."""
    key_file = tmp_path / "receipts.pem"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("VRM_")}
    env |= {
        "VRM_ENV": "development",
        "VRM_INSTANCE_PATH": str(tmp_path / "instance"),
        "VRM_RECEIPT_SIGNING_KEY_FILE": str(key_file),
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "vrm", "rotate-receipt-key"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        f"error: VRM_RECEIPT_SIGNING_KEY_FILE: cannot read the receipt signing key {key_file}: "
    )
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "receipts.retired.json").exists()
