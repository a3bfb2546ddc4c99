"""Operator commands for the public log (registered under ``flask vrm``)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from vrm_portal.clock import utcnow
from vrm_portal.db import READ_ONLY
from vrm_portal.extensions import db
from vrm_portal.log import service
from vrm_portal.log.signing import log_signer


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


COMMANDS = (checkpoint, verify_log, log_key)
