"""Operator commands for data requests (registered under ``flask vrm``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from flask.cli import with_appcontext

from vrm_portal.clock import utcnow
from vrm_portal.consent.signing import current_notary
from vrm_portal.extensions import db
from vrm_portal.requests import emails, erasure


def _moment(raw: str | None) -> datetime:
    if raw is None:
        return utcnow()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise click.BadParameter(
            f"{raw!r} is not an ISO 8601 date and time, e.g. 2026-12-31T23:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("process-erasures")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Erase at most this many accounts in this run.",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="DATETIME",
    help="Erase what is due at this moment instead of now (ISO 8601; for tests).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@with_appcontext
def process_erasures(limit: int, as_of: str | None, as_json: bool) -> None:
    """Erase the accounts whose 30-day grace period is over (safe to run from cron).

    Each account is erased in its own transaction and gets its final email once that
    commits. An account that fails is left untouched and retried on the next run; the
    command then exits with status 1.
    """
    now = _moment(as_of)

    run = erasure.process_due(
        db.session, current_notary(), now, limit=limit, farewell=emails.send_farewell
    )
    if as_json:
        click.echo(json.dumps({"erased": run.erased, "failed": run.failed}))
    else:
        click.echo(f"{len(run.erased)} account(s) erased, {len(run.failed)} failed.")
        for reference in run.erased:
            click.echo(f"  erased: request {reference}")
        for request_id in run.failed:
            click.echo(f"  failed: request #{request_id} (will be retried)", err=True)
    if run.failed:
        raise SystemExit(1)


COMMANDS = (process_erasures,)
