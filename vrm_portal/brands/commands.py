"""Operator commands for brands and their API clients (``flask --app wsgi vrm …``)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from vrm_portal.brands import clients
from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import brand_by_slug, list_brands
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db


def _brand(slug: str) -> Brand:
    brand = brand_by_slug(db.session, slug)
    if brand is None:
        known = ", ".join(b.slug for b in list_brands(db.session)) or "none yet"
        raise click.UsageError(f"no brand {slug!r} (brands: {known})")
    return brand


def _when(moment: object) -> str | None:
    return moment.isoformat() if moment is not None else None  # type: ignore[attr-defined]


@click.command("list-brands")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def list_brands_command(as_json: bool) -> None:
    """List the brands (slug and name)."""
    brands = list_brands(db.session)
    if as_json:
        click.echo(json.dumps([{"slug": b.slug, "name": b.name} for b in brands], indent=2))
        return
    if not brands:
        click.echo("No brands yet: import a catalogue (vrm import-catalogue).")
    for brand in brands:
        click.echo(f"{brand.slug:<28} {brand.name}")


@click.command("create-client")
@click.option("--brand", "slug", required=True, help="The brand's slug (vrm list-brands).")
@click.option(
    "--scopes",
    required=True,
    help=f"Space-separated, among: {' '.join(clients.SCOPES)}.",
)
@click.option("--name", default="", help="A label, e.g. the brand's CRM.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def create_client_command(slug: str, scopes: str, name: str, as_json: bool) -> None:
    """Create an API client for a brand; prints its secret, shown only this once."""
    brand = _brand(slug)
    try:
        scope_list = clients.parse_scopes(scopes)
    except clients.ClientError as error:
        raise click.UsageError(str(error)) from None
    created = clients.create_client(db.session, brand, scope_list, utcnow(), name)
    db.commit()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "client_id": created.client.client_id,
                    "client_secret": created.secret,
                    "brand": brand.slug,
                    "scopes": scope_list,
                }
            )
        )
        return
    click.echo(f"Client for {brand.name}: {created.client.client_id}")
    click.echo(f"Secret (shown only now, store it safely): {created.secret}")
    click.echo(f"Scopes: {' '.join(scope_list)}")


@click.command("list-clients")
@click.option("--brand", "slug", default=None, help="Only this brand's clients.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def list_clients_command(slug: str | None, as_json: bool) -> None:
    """List API clients with their scopes, last use and whether they are revoked."""
    brand = _brand(slug) if slug else None
    listings = clients.list_clients(db.session, brand)
    rows: list[dict[str, Any]] = [
        {
            "client_id": item.client.client_id,
            "brand": item.client.brand.slug,
            "name": item.client.name,
            "scopes": item.client.scopes.split(),
            "created_at": _when(item.client.created_at),
            "last_used_at": _when(item.last_used_at),
            "revoked_at": _when(item.client.revoked_at),
        }
        for item in listings
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No API clients.")
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        click.echo(
            f"{row['client_id']}  {row['brand']}  {' '.join(row['scopes'])}  "
            f"last used: {row['last_used_at'] or 'never'}  {state}"
        )


@click.command("revoke-client")
@click.argument("client_id")
@with_appcontext
def revoke_client_command(client_id: str) -> None:
    """Revoke an API client: its secret and all its tokens stop working at once."""
    try:
        client = clients.revoke_client(db.session, client_id, utcnow())
    except clients.ClientError as error:
        raise click.UsageError(str(error)) from None
    db.commit()
    click.echo(f"Revoked {client.client_id} ({client.brand.slug}).")


@click.command("rotate-client")
@click.argument("client_id")
@click.option(
    "--grace-hours",
    type=click.IntRange(0, 720),
    default=None,
    help="Hours the old secret keeps working (default: VRM_CLIENT_SECRET_GRACE_HOURS).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def rotate_client_command(client_id: str, grace_hours: int | None, as_json: bool) -> None:
    """Give a client a new secret, shown only this once; the old one works for a while."""
    client = clients.find_client(db.session, client_id)
    if client is None:
        raise click.UsageError(f"no API client {client_id!r}")
    hours = current_app.config["CLIENT_SECRET_GRACE_HOURS"] if grace_hours is None else grace_hours
    try:
        secret = clients.rotate_secret(db.session, client, utcnow(), timedelta(hours=hours))
    except clients.ClientError as error:
        raise click.UsageError(str(error)) from None
    db.commit()
    until = _when(client.previous_secret_expires_at)
    if as_json:
        click.echo(
            json.dumps(
                {"client_id": client.client_id, "client_secret": secret, "old_secret_until": until}
            )
        )
        return
    click.echo(f"New secret for {client.client_id} (shown only now, store it safely): {secret}")
    click.echo(f"The old secret works until {until}." if until else "The old secret stopped.")


COMMANDS = [
    list_brands_command,
    create_client_command,
    list_clients_command,
    revoke_client_command,
    rotate_client_command,
]
