"""A consent anyone can check, end to end: a consumer gives consents in the browser, a
checkpoint of the public log is signed by the live app, the consumer opens "Check it is
in the public log", sees it verified and downloads the proof (checked here with the
portal's Merkle code against the signed checkpoint); then the proof bundle, from the
"Download my data" button and from ``vrm proof-bundle``, is checked by its own verify.py
in a separate Python process. axe-core checks the new pages."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.exc import IntegrityError

from tests.e2e.conftest import LiveServer, sign_in_as
from tests.e2e.test_consent_journey import button, flashes
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.log import merkle, note
from vrm_portal.log import service as log_service
from vrm_portal.log.signing import log_signer

pytestmark = pytest.mark.e2e

SMS = "Offers by text message"
ANALYTICS = "Measuring how you use our services"
CHECK = re.compile(r"^Check it is in the public log")


def sign_checkpoint(live_server: LiveServer) -> None:
    """Sign a checkpoint through the live app (the worker's schedule may sign one at the
    same moment: then the log is covered all the same)."""
    with live_server.app.app_context():
        try:
            log_service.sign_checkpoint(db.session, log_signer(), utcnow())
            db.session.commit()
        except IntegrityError:
            db.session.rollback()


def run_verify(folder: Path) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, "verify.py"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    return result.returncode, result.stdout.splitlines()


def unzip(path: Path, folder: Path) -> Path:
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    return folder


def test_a_consent_checked_in_the_public_log_and_in_a_proof_bundle(
    page: Page, live_server, catalogue, make_account, check_a11y, screenshot, tmp_path: Path
):
    email = make_account()
    sign_in_as(page, email)
    page.goto("/consents/maison-berlingot")
    button(page, "Give consent", SMS).click()
    expect(flashes(page)).to_contain_text(f"Consent given: “{SMS}”.")
    page.goto("/consents/aurore-automobiles")
    button(page, "Give consent", ANALYTICS).click()
    expect(flashes(page)).to_contain_text(f"Consent given: “{ANALYTICS}”.")

    # Before a checkpoint covers it, the page says when it will be in the log.
    page.goto("/consents/history")
    expect(page.locator("tr.history__row")).to_have_count(2)
    page.locator("tr.history__row").first.get_by_role("link", name=CHECK).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check it is in the public log")
    status = page.locator("#status-title + .flash")
    expect(status).to_contain_text(re.compile(r"Not yet|Verified\."))
    if "Not yet" in status.inner_text():  # unless the worker's schedule just signed one
        expect(status).to_contain_text(re.compile(r"within \d+ minutes?"))
    check_a11y(page, "the public log check of a change not in a checkpoint yet")

    sign_checkpoint(live_server)

    # The consumer opens the check from the history and sees it verified.
    page.goto("/consents/history")
    check_a11y(page, "the consent history with its log links")
    page.locator("tr.history__row").first.get_by_role("link", name=CHECK).click()
    expect(status).to_contain_text("Verified.")
    expect(page.get_by_role("heading", name="The signed checkpoint")).to_be_visible()
    check_a11y(page, "the public log check of a verified change")
    screenshot(page, "consent-log-check")

    # The downloaded proof leads to the root of the signed checkpoint.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the proof (JSON)").click()
    download = download_info.value
    assert re.fullmatch(r"consent-log-proof-\d+\.json", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    proof = json.loads(saved.read_text(encoding="utf-8"))
    published = page.request.get("/log/vkey").text()
    assert proof["verifier_key"] == published.strip()
    checkpoint = note.parse_checkpoint(
        note.open_note(proof["checkpoint"], note.parse_verifier_key(published))
    )
    assert proof["size"] == checkpoint.size
    leaf = merkle.leaf_hash(bytes.fromhex(proof["event_hash"]))
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    assert merkle.verify_inclusion(proof["index"], proof["size"], leaf, hashes, checkpoint.root)

    # The proof bundle of all their consents, from the Download my data page.
    page.goto("/my-data/export/")
    check_a11y(page, "the download page with the proof bundle")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download a proof bundle of my consents").click()
    download = download_info.value
    assert download.suggested_filename.startswith("vrm-portal-proof-bundle-")
    zipped = tmp_path / download.suggested_filename
    download.save_as(zipped)
    folder = unzip(zipped, tmp_path / "from-the-button")
    code, lines = run_verify(folder)
    assert code == 0, "\n".join(lines)
    assert all(line.startswith("OK ") for line in lines), "\n".join(lines)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert {e["brand"] for e in manifest["events"]} == {"maison-berlingot", "aurore-automobiles"}
    page.goto("/my-data/export/")
    requests = page.get_by_role("table", name="Your latest data requests, newest first")
    expect(requests).to_contain_text("Proof bundle of my consents")

    # The privacy office's command makes the same bundle for a regulator.
    output = tmp_path / "for-the-regulator.zip"
    result = live_server.app.test_cli_runner().invoke(
        args=["vrm", "proof-bundle", "--email", email, "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert "2 event(s)" in result.output
    folder = unzip(output, tmp_path / "from-the-command")
    code, lines = run_verify(folder)
    assert code == 0, "\n".join(lines)
    assert all(line.startswith("OK ") for line in lines), "\n".join(lines)
