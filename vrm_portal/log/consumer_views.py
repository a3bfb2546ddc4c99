"""The consumer's side of the public log: "Check it is in the public log" for each event
of their consent history (with the proof to download), and the proof bundle of all
their consents on the "Download my data" page."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import IO

from flask import Blueprint, Response, abort, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required

from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger
from vrm_portal.consent.queries import purpose_titles
from vrm_portal.consent.web import page_locale
from vrm_portal.extensions import db, limiter
from vrm_portal.log import bundle, event_proof
from vrm_portal.log.signing import log_signer
from vrm_portal.requests.export import begin_snapshot
from vrm_portal.requests.export_views import DOWNLOAD_LIMIT
from vrm_portal.requests.service import record_proof_bundle

bp = Blueprint("proofs", __name__)

#: A bundle bigger than this is spooled to a temporary file rather than kept in memory.
SPOOL_BYTES = 8 * 1024 * 1024
CHUNK = 64 * 1024
#: The largest ledger position (a BIGINT): beyond it, a 404 rather than a database error.
MAX_SEQ = 2**63 - 1


def _found(seq: int) -> event_proof.EventInLog:
    found = event_proof.event_in_log(
        db.session, current_user.account.subject_key, seq, log_signer().verifier_key
    )
    if found is None:
        abort(404)
    return found


@bp.get(f"/consents/history/<int(min=1, max={MAX_SEQ}):seq>/log")
@login_required  # type: ignore[untyped-decorator]
def event_page(seq: int) -> ResponseReturnValue:
    found = _found(seq)
    doc = found.document
    titles = purpose_titles(db.session, page_locale())
    minutes = None
    if not found.included:
        minutes = event_proof.minutes_to_next_checkpoint(
            str(current_app.config["SCHEDULE_CHECKPOINT"]), utcnow()
        )
    return render_template(
        "proofs/event.html",
        found=found,
        title=titles.get((doc["brand"], doc["purpose"], doc["purpose_version"]), doc["purpose"]),
        occurred_at=ledger.parse_timestamp(doc["occurred_at"]),
        event_hash=bytes(found.event.hash).hex(),
        proof_hashes=[h.hex() for h in found.proof or []],
        verifier_key=log_signer().verifier_key,
        minutes=minutes,
    )


@bp.get(f"/consents/history/<int(min=1, max={MAX_SEQ}):seq>/log/proof.json")
@login_required  # type: ignore[untyped-decorator]
def event_proof_download(seq: int) -> ResponseReturnValue:
    """The proof as a JSON file: the consumer's own data, so a plain GET, never cached."""
    found = _found(seq)
    if not found.included:
        abort(404)
    signer = log_signer()
    document = event_proof.proof_document(found, signer.origin, signer.verifier_key)
    response = Response(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", mimetype="application/json"
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="consent-log-proof-{found.event.seq}.json"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _account_key() -> str:
    account = getattr(current_user, "account", None)
    return f"proof-bundle-account-{account.id}" if account is not None else get_remote_address()


@bp.post("/my-data/proof-bundle")
@limiter.limit(DOWNLOAD_LIMIT, key_func=_account_key)
@login_required  # type: ignore[untyped-decorator]
def proof_bundle() -> ResponseReturnValue:
    """The proof bundle of all the consumer's consents, once its download is recorded
    (committed) as a data request, like the other downloads."""
    account = current_user.account
    subject_key = account.subject_key
    now = utcnow()
    record_proof_bundle(db.session, account, now)
    db.commit()
    keys = bundle.current_keys()
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    try:
        begin_snapshot(db.session)
        bundle.write_bundle(
            db.session,
            spool,
            subject_key=subject_key,
            keys=keys,
            portal=str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/"),
            now=now,
        )
        length = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def stream() -> Iterator[bytes]:
        try:
            while chunk := spool.read(CHUNK):
                yield chunk
        finally:
            spool.close()

    response = Response(stream(), mimetype="application/zip")
    response.headers["Content-Length"] = str(length)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="vrm-portal-proof-bundle-{now:%Y-%m-%d}.zip"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response
