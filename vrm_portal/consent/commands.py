"""Operator commands for the catalogue and the ledger (registered under ``flask vrm``)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from pydantic import ValidationError

from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, sequencer, service
from vrm_portal.consent.catalogue import (
    CatalogueSpec,
    PurposeText,
    import_catalogue,
    publish_version,
)
from vrm_portal.consent.errors import UnknownPurpose
from vrm_portal.consent.receipt_keys import rotate_receipt_key
from vrm_portal.consent.receipts import ALGORITHMS, SigningKeyError
from vrm_portal.consent.renewal import JOB_KIND as RENEWAL_JOB
from vrm_portal.consent.renewal import count_due
from vrm_portal.consent.signing import current_notary
from vrm_portal.db import READ_ONLY
from vrm_portal.extensions import db


def _validation_message(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)


@click.command("import-catalogue")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_catalogue_command(path: Path) -> None:
    """Create or update brands, purposes and topics from a catalogue JSON file.

    A purpose whose text changed gets a new version: earlier consents then need renewal.
    """
    try:
        spec = CatalogueSpec.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise click.ClickException(
            f"{path} is not a valid catalogue:\n{_validation_message(exc)}"
        ) from exc
    report = import_catalogue(db.session, spec)
    db.commit()
    if not report.changed:
        click.echo("Catalogue unchanged.")
    for label, items in (
        ("brands created", report.brands_created),
        ("purposes created", report.purposes_created),
        ("versions published", report.versions_published),
        ("topics created", report.topics_created),
    ):
        if items:
            click.echo(f"{label}: {', '.join(items)}")


@click.command("publish-purpose-version")
@with_appcontext
@click.option("--brand", "brand_slug", required=True, help="Brand slug, e.g. maison-berlingot.")
@click.option("--purpose", "purpose_key", required=True, help="Purpose key, e.g. email-offers.")
@click.option(
    "--text-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON file: {"title_en", "title_fr", "text_en", "text_fr"}.',
)
def publish_purpose_version(brand_slug: str, purpose_key: str, text_file: Path) -> None:
    """Publish a new text version of a purpose; consents to older texts need renewal."""
    try:
        purpose = service.find_purpose(db.session, brand_slug, purpose_key)
    except UnknownPurpose as exc:
        raise click.ClickException(f"no purpose {purpose_key!r} for brand {brand_slug!r}") from exc
    try:
        text = PurposeText.model_validate(json.loads(text_file.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        detail = _validation_message(exc) if isinstance(exc, ValidationError) else f"  {exc}"
        raise click.ClickException(f"{text_file} is not a valid purpose text:\n{detail}") from exc
    version = publish_version(db.session, purpose, text)
    if version is None:
        db.rollback()
        click.echo(
            f"{brand_slug}/{purpose_key}: this is already the current text; nothing published."
        )
        return
    affected = count_due(db.session, purpose, version.version)
    db.commit()
    click.echo(
        f"{brand_slug}/{purpose_key}: version {version.version} published "
        f"(hash {version.content_hash[:12]}…); renewal notices queued for {affected} "
        f"consumer(s): consent.needs_renewal in the brand's change feed "
        f"(job {RENEWAL_JOB}, progress in `vrm jobs`)."
    )


@click.command("verify-ledger")
@with_appcontext
def verify_ledger() -> None:
    """Check the whole consent ledger; exits 1 and names the first bad event if altered."""
    with db.engine.connect() as connection:
        result = ledger.verify(connection.execution_options(**READ_ONLY))
    if result.ok:
        click.echo(f"Ledger OK: {result.checked} event(s) verified, chain intact.")
        return
    event = f" ({result.first_bad_event_id})" if result.first_bad_event_id else ""
    click.echo(
        f"Ledger ALTERED at event #{result.first_bad_seq}{event}: {result.problem}. "
        f"{result.checked} event(s) before it are intact.",
        err=True,
    )
    raise SystemExit(1)


@click.command("sequence-ledger")
@with_appcontext
def sequence_ledger() -> None:
    """Integrate every consent event still waiting for its place in the ledger (what the
    worker's sequencer does; safe to run beside it: one integrates at a time)."""
    with db.sessionmaker() as session:
        total = sequencer.integrate_all(
            lambda: session, limit=current_app.config["LEDGER_SEQUENCER_BATCH"]
        )
    click.echo(f"{total} event(s) integrated; none is waiting.")


@click.command("expire-consents")
@with_appcontext
def expire_consents() -> None:
    """Record ``expired`` for every consent past its validity (safe to run from cron)."""
    total = 0
    while True:
        count = service.expire_due(db.session, current_notary(), now=utcnow())
        db.commit()
        total += count
        if count == 0:
            break
    click.echo(f"{total} consent(s) expired.")


@click.command("rotate-receipt-key")
@with_appcontext
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    help="The new key's algorithm (default: the current key's).",
)
def rotate_receipt_key_command(algorithm: str | None) -> None:
    """Sign new receipts with a new key and retire the current one.

    The retired key's public half stays in /.well-known/jwks.json (it is kept in
    VRM_RECEIPT_RETIRED_KEYS_FILE), so the receipts it signed still verify; its private
    half is overwritten. Restart every portal process afterwards (gunicorn, vrm worker).
    """
    key_file = Path(current_app.config["RECEIPT_SIGNING_KEY_FILE"])
    retired_file = Path(current_app.config["RECEIPT_RETIRED_KEYS_FILE"])
    try:
        rotation = rotate_receipt_key(key_file, retired_file, algorithm)
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Receipts are now signed with key {rotation.current_kid} ({rotation.algorithm}).")
    click.echo(
        f"Key {rotation.retired_kid} retired: its public half is kept in {retired_file} "
        f"({rotation.retired_count} retired key(s), all in the JWKS); its private half is gone."
    )
    click.echo(
        "Restart every portal process (gunicorn, vrm worker): each keeps signing with the "
        "key it loaded at start-up, and serves the new JWKS only once restarted."
    )


COMMANDS = (
    import_catalogue_command,
    publish_purpose_version,
    verify_ledger,
    sequence_ledger,
    expire_consents,
    rotate_receipt_key_command,
)
