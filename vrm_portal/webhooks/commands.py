"""Operator commands for brands' webhooks (registered under ``flask vrm``).

``webhooks-add``, ``webhooks-list``, ``webhooks-disable`` and ``webhooks-retry`` manage
endpoints; ``webhooks-deliver`` is the worker (a loop, or one pass with ``--once``).
"""

from __future__ import annotations

import json
import signal
import threading
from datetime import datetime
from types import FrameType
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.webhooks import service
from vrm_portal.webhooks.service import EndpointOverview, WebhookError
from vrm_portal.webhooks.worker import Summary, deliver_due

#: Environments where http:// to the machine itself is accepted (never production).
LOOPBACK_HTTP_ENVIRONMENTS = frozenset({"development", "testing"})


class CommandError(click.ClickException):
    """A refused command: its message, and exit status 2, without a traceback."""

    exit_code = 2


def _brand(slug: str) -> Brand:
    brand = brand_by_slug(db.session, slug)
    if brand is None:
        raise CommandError(f"no brand {slug!r} (see the catalogue for the brands' slugs)")
    return brand


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@click.command("webhooks-add")
@with_appcontext
@click.option("--brand", "brand_slug", required=True, help="Brand slug, e.g. maison-berlingot.")
@click.option("--url", required=True, help="The brand's https:// URL that receives changes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def add_endpoint(brand_slug: str, url: str, as_json: bool) -> None:
    """Add a webhook endpoint for a brand; prints its signing secret, once."""
    brand = _brand(brand_slug)
    allow_loopback_http = current_app.config.get("ENV_NAME") in LOOPBACK_HTTP_ENVIRONMENTS
    try:
        endpoint, secret = service.register_endpoint(
            db.session, brand, url, allow_loopback_http=allow_loopback_http, now=utcnow()
        )
    except WebhookError as exc:
        db.rollback()
        raise CommandError(str(exc)) from exc
    db.commit()
    if as_json:
        document = {
            "id": endpoint.id,
            "brand": brand.slug,
            "url": endpoint.url,
            "secret": secret,
            "created_at": _iso(endpoint.created_at),
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"Endpoint #{endpoint.id} added for {brand.slug}: {endpoint.url}")
    click.echo(f"Signing secret (shown only now; give it to the brand): {secret}")


def _attempt_document(overview: EndpointOverview) -> dict[str, Any] | None:
    attempt = overview.last_attempt
    if attempt is None:
        return None
    return {
        "at": _iso(attempt.attempted_at),
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


@click.command("webhooks-list")
@with_appcontext
@click.option("--brand", "brand_slug", required=True, help="Brand slug, e.g. maison-berlingot.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoints as JSON.")
def list_endpoints(brand_slug: str, as_json: bool) -> None:
    """List a brand's endpoints, their queue and their last attempt (never the secrets)."""
    brand = _brand(brand_slug)
    overviews = service.list_endpoints(db.session, brand)
    if as_json:
        endpoints = [
            {
                "id": o.endpoint.id,
                "url": o.endpoint.url,
                "created_at": _iso(o.endpoint.created_at),
                "disabled_at": _iso(o.endpoint.disabled_at),
                "pending": o.pending,
                "delivered": o.delivered,
                "failed": o.failed,
                "last_attempt": _attempt_document(o),
            }
            for o in overviews
        ]
        click.echo(json.dumps({"brand": brand.slug, "endpoints": endpoints}, indent=2))
        return
    if not overviews:
        click.echo(f"{brand.slug} has no webhook endpoint.")
        return
    for o in overviews:
        state = f"disabled {_iso(o.endpoint.disabled_at)}" if o.endpoint.disabled_at else "active"
        click.echo(f"#{o.endpoint.id} {o.endpoint.url} ({state})")
        click.echo(f"    pending {o.pending}, delivered {o.delivered}, failed {o.failed}")
        attempt = o.last_attempt
        if attempt is not None:
            result = f"HTTP {attempt.status_code}" if attempt.status_code else "no answer"
            if attempt.error:
                result = attempt.error
            click.echo(
                f"    last attempt {_iso(attempt.attempted_at)}: {result} "
                f"({attempt.duration_ms} ms)"
            )


@click.command("webhooks-disable")
@with_appcontext
@click.option("--brand", "brand_slug", required=True, help="Brand slug, e.g. maison-berlingot.")
@click.option("--id", "endpoint_id", type=int, required=True, help="Endpoint number.")
def disable_endpoint(brand_slug: str, endpoint_id: int) -> None:
    """Stop sending to an endpoint (its queued deliveries stay unsent)."""
    brand = _brand(brand_slug)
    try:
        endpoint = service.disable_endpoint(db.session, brand, endpoint_id, utcnow())
    except WebhookError as exc:
        db.rollback()
        raise CommandError(str(exc)) from exc
    db.commit()
    click.echo(
        f"Endpoint #{endpoint.id} ({endpoint.url}) disabled since {_iso(endpoint.disabled_at)}."
    )


@click.command("webhooks-retry")
@with_appcontext
@click.option("--id", "endpoint_id", type=int, default=None, help="Only this endpoint's.")
def retry_failed(endpoint_id: int | None) -> None:
    """Queue deliveries that gave up again, with a fresh retry schedule."""
    try:
        count = service.retry_failed(db.session, endpoint_id, utcnow())
    except WebhookError as exc:
        db.rollback()
        raise CommandError(str(exc)) from exc
    db.commit()
    click.echo(f"{count} failed delivery(ies) queued again.")


def _describe(summary: Summary) -> str:
    text = f"{summary.delivered} delivered, {summary.retrying} to retry, {summary.failed} given up"
    if summary.stale:
        text += f", {summary.stale} recorded too late (lease ended)"
    return text + "."


@click.command("webhooks-deliver")
@with_appcontext
@click.option("--once", is_flag=True, help="One pass over what is due, then exit (cron).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between passes.",
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=100, show_default=True, help="Rows per claim."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=60),
    default=5.0,
    show_default=True,
    help="Seconds to wait for a brand's server.",
)
def deliver(once: bool, interval: float, batch: int, timeout: float) -> None:
    """Send the due webhook deliveries: in a loop until Ctrl-C or SIGTERM, or --once."""
    engine = db.engine
    if once:
        try:
            summary = deliver_due(engine, utcnow(), batch=batch, timeout=timeout)
        except SQLAlchemyError as exc:
            raise CommandError(f"database error: {exc}") from exc
        click.echo(_describe(summary))
        return
    stop = threading.Event()
    previous: Any = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:

        def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, on_sigterm)
    click.echo(f"Delivering webhooks every {interval:g} s; Ctrl-C to stop.")
    try:
        while not stop.is_set():
            try:
                summary = deliver_due(engine, utcnow(), batch=batch, timeout=timeout)
            except SQLAlchemyError as exc:
                click.echo(f"database error (retrying in {interval:g} s): {exc}", err=True)
            else:
                if summary.attempted:
                    click.echo(_describe(summary))
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    click.echo("Stopped.")


COMMANDS = (add_endpoint, list_endpoints, disable_endpoint, deliver, retry_failed)
