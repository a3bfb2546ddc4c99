"""Operator commands for background jobs (registered under ``flask vrm``)."""

from __future__ import annotations

import json
import logging
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.jobs import service
from vrm_portal.jobs.engine import SCHEDULES, JobEngine, enqueue_scheduled


def _engine() -> JobEngine:
    engine: JobEngine = current_app.extensions["vrm_jobs"]
    return engine


@click.command("worker")
@with_appcontext
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Worker threads in this process (run one process per machine, or more).",
)
@click.option(
    "--no-schedule",
    is_flag=True,
    help="Do not enqueue the scheduled jobs from this process (another one does).",
)
def worker(workers: int, no_schedule: bool) -> None:
    """Run the job consumer (Huey's): emails, schedules, webhooks. Ctrl-C to stop.

    Several can run at once, on several machines, against the same VRM_JOBS_URL (Redis):
    each job is claimed by one worker only, and a scheduled run is enqueued once.
    """
    engine = _engine()
    if engine.immediate:
        raise click.ClickException(
            "VRM_JOBS_URL is 'immediate': jobs run in the web process; nothing to consume"
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    click.echo(
        f"Job worker: {workers} thread(s) on {current_app.config['JOBS_URL']}"
        f"{'' if no_schedule else ', schedules on'}. Ctrl-C to stop."
    )
    engine.consumer(workers=workers, periodic=not no_schedule).run()


@click.command("jobs")
@with_appcontext
@click.option("--failed", "only_failed", is_flag=True, help="Only the failed jobs.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
def list_jobs(only_failed: bool, limit: int, as_json: bool) -> None:
    """Counts per status and the latest jobs (or the failed ones, with their error)."""
    counts = service.counts(db.session)
    jobs = (
        service.failed_jobs(db.session, limit=limit)
        if only_failed
        else service.recent_jobs(db.session, limit=limit)
    )
    rows: list[dict[str, Any]] = [
        {
            "id": job.id,
            "kind": job.kind,
            "status": job.status,
            "attempts": job.attempts,
            "created_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "last_error": job.last_error,
        }
        for job in jobs
    ]
    if as_json:
        click.echo(json.dumps({"counts": counts.__dict__, "jobs": rows}, indent=2))
        return
    click.echo(
        f"queued {counts.queued}, running {counts.running}, done {counts.done}, "
        f"failed {counts.failed}"
    )
    for row in rows:
        error = f"  {row['last_error']}" if row["last_error"] else ""
        click.echo(
            f"{row['id']}  {row['kind']:<28} {row['status']:<8} "
            f"attempts {row['attempts']}  {row['created_at'][:19]}{error}"
        )


@click.command("jobs-retry")
@with_appcontext
@click.argument("job_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Every failed job.")
def retry_jobs(job_ids: tuple[str, ...], all_failed: bool) -> None:
    """Queue failed jobs again (by id, or --all-failed)."""
    ids = list(job_ids)
    if all_failed:
        ids += [job.id for job in service.failed_jobs(db.session, limit=10_000)]
    if not ids:
        raise click.UsageError("name the job ids to retry, or pass --all-failed")
    revived = [job_id for job_id in ids if service.retry(db.session, job_id)]
    db.commit()
    missing = sorted(set(ids) - set(revived))
    click.echo(f"{len(revived)} job(s) queued again.")
    if missing:
        click.echo(f"not failed (or unknown): {', '.join(missing)}", err=True)
        raise SystemExit(1)


@click.command("jobs-run")
@with_appcontext
@click.option(
    "--schedule",
    "scheduled",
    type=click.Choice(sorted(kind.removeprefix("schedule.") for kind in SCHEDULES.values())),
    help="Enqueue this scheduled job first (as its schedule would).",
)
def run_jobs(scheduled: str | None) -> None:
    """Run every due job now, in this process (scripts, or without a worker)."""
    engine = _engine()
    if scheduled:
        enqueue_scheduled(engine, f"schedule.{scheduled}")
    outcomes: dict[str, int] = {}
    ids = service.due_job_ids(db.session, now=utcnow())
    db.rollback()
    for job_id in ids:
        outcome = engine.run_now(job_id)
        outcomes[outcome.status] = outcomes.get(outcome.status, 0) + 1
    summary = ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items()))
    click.echo(f"{len(ids)} job(s) run{': ' + summary if summary else ''}.")
    if outcomes.get("failed"):
        raise SystemExit(1)


COMMANDS = (worker, list_jobs, retry_jobs, run_jobs)
