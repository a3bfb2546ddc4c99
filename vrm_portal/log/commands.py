"""Operator commands for the public log (registered under ``flask vrm``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.consent.models import Purpose
from vrm_portal.db import READ_ONLY
from vrm_portal.extensions import db
from vrm_portal.log import bundle, service
from vrm_portal.log.signing import log_signer
from vrm_portal.requests.export import begin_snapshot


@click.command("checkpoint")
@with_appcontext
def checkpoint() -> None:
    """Sign a checkpoint of the public log now, if it grew (the worker does it on schedule)."""
    try:
        signed = service.sign_checkpoint(db.session, log_signer(), utcnow())
    except service.LogInconsistent as exc:
        db.rollback()
        raise click.ClickException(f"refused: {exc}") from exc
    if signed is None:
        db.rollback()
        click.echo("The log did not grow since the last checkpoint; nothing signed.")
        return
    db.commit()
    click.echo(
        f"Checkpoint of size {signed.checkpoint.size} signed and sent to "
        f"{signed.brands_told} brand(s)."
    )
    click.echo(signed.checkpoint.note, nl=False)


@click.command("verify-log")
@with_appcontext
def verify_log() -> None:
    """Check every event against the Merkle tree and every checkpoint (exit 1 if not)."""
    with db.engine.connect() as connection:
        result = service.verify_log(connection.execution_options(**READ_ONLY))
    if result.ok:
        click.echo(f"Log OK: {result.checked} leaves, every checkpoint matches.")
        return
    click.echo(
        f"Log ALTERED at leaf {result.first_bad_index} (event seq "
        f"{(result.first_bad_index or 0) + 1}): {result.problem}.",
        err=True,
    )
    raise SystemExit(1)


@click.command("log-key")
@with_appcontext
def log_key() -> None:
    """Print the verifier key of the log's checkpoints (as served at /log/vkey)."""
    click.echo(log_signer().verifier_key)


@click.command("proof-bundle")
@click.option("--email", help="The consumer's email address.")
@click.option("--subject-key", help="The consumer's key in the ledger (kept after an erasure).")
@click.option("--pairwise-id", help="The id under which a brand knows the consumer.")
@click.option("--brand", metavar="SLUG", help="Only the events of this brand.")
@click.option("--purpose", metavar="KEY", help="Only the events of this purpose.")
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The ZIP file to write.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@with_appcontext
def proof_bundle(
    email: str | None,
    subject_key: str | None,
    pairwise_id: str | None,
    brand: str | None,
    purpose: str | None,
    output: Path,
    as_json: bool,
) -> None:
    """Write the proof bundle of one consumer's consents: events, receipts, notices, the
    latest checkpoint, inclusion proofs and verify.py, to check offline.

    Events after the latest checkpoint are included, flagged "not yet in a checkpoint";
    run the command again after the next checkpoint to prove them in the log too.
    """
    if sum(value is not None for value in (email, subject_key, pairwise_id)) != 1:
        raise click.UsageError("give exactly one of --email, --subject-key and --pairwise-id")
    session = db.session
    begin_snapshot(session)
    try:
        subject = bundle.find_subject(
            session, email=email, subject_key=subject_key, pairwise_id=pairwise_id
        )
    except bundle.SubjectNotFound as exc:
        raise click.ClickException(str(exc)) from None
    if brand is not None and session.scalar(select(Brand.id).where(Brand.slug == brand)) is None:
        raise click.BadParameter(f"no brand {brand!r}", param_hint="--brand")
    if purpose is not None:
        known = select(Purpose.id).join(Brand).where(Purpose.key == purpose)
        if brand is not None:
            known = known.where(Brand.slug == brand)
        if session.scalar(known.limit(1)) is None:
            raise click.BadParameter(f"no purpose {purpose!r}", param_hint="--purpose")
    folder = output.resolve().parent
    if not folder.is_dir():
        raise click.BadParameter(f"no folder {folder}", param_hint="--output")
    handle, scratch = tempfile.mkstemp(prefix=".proof-bundle-", suffix=".zip", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            summary = bundle.write_bundle(
                session,
                out,
                subject_key=subject.subject_key,
                keys=bundle.current_keys(),
                portal=str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/"),
                now=utcnow(),
                brand=brand,
                purpose=purpose,
            )
        os.chmod(scratch, 0o600)
        os.replace(scratch, output)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    finally:
        db.rollback()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "output": str(output),
                    "subject_key": summary.subject_key,
                    "events": summary.events,
                    "proven": summary.proven,
                    "pending": summary.pending,
                    "checkpoint_size": summary.checkpoint_size,
                    "files": summary.files,
                }
            )
        )
        return
    found_by = f" (pairwise id of {subject.via_brand})" if subject.via_brand else ""
    click.echo(
        f"Proof bundle of subject {summary.subject_key}{found_by}: {summary.events} "
        f"event(s), {summary.files} files, written to {output}."
    )
    if summary.checkpoint_size is None:
        click.echo("No checkpoint has been signed yet: no event can be proven in the log.")
    else:
        click.echo(
            f"{summary.proven} event(s) proven in the checkpoint of size {summary.checkpoint_size}."
        )
    if summary.pending:
        click.echo(
            f"{summary.pending} event(s) are newer than the latest checkpoint: they are in "
            "the bundle, flagged as not yet in a checkpoint. Run this command again after the "
            "next checkpoint (within minutes, or `vrm checkpoint`) to prove them too.",
            err=True,
        )
    click.echo("Check it: unzip it, then run `python3 verify.py` in its folder.")


COMMANDS = (checkpoint, verify_log, log_key, proof_bundle)
