"""Operator commands: ``flask --app wsgi vrm <command>``."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Blueprint, current_app
from sqlalchemy import select

from vrm_portal import schema
from vrm_portal.accounts import errors, second_factor, service
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.brands import clients
from vrm_portal.brands import commands as brand_commands
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent import commands as consent_commands
from vrm_portal.consent.signing import current_notary
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.demo.history import (
    STAFF_CREATED_DAYS_AGO,
    date_sign_up,
    seed_demo_activity,
    seed_demo_history,
)
from vrm_portal.extensions import db
from vrm_portal.jobs import commands as job_commands
from vrm_portal.log import commands as log_commands
from vrm_portal.requests import commands as request_commands
from vrm_portal.webhooks import commands as webhook_commands

bp = Blueprint("vrm", __name__, cli_group="vrm")
for command in [
    *consent_commands.COMMANDS,
    *brand_commands.COMMANDS,
    *webhook_commands.COMMANDS,
    *request_commands.COMMANDS,
    *job_commands.COMMANDS,
    *log_commands.COMMANDS,
]:
    bp.cli.add_command(command)

DEMO_PASSWORD = "demo-password-2026"
#: The demo brand API client of Aurore Automobiles (development data, like the password).
DEMO_API_CLIENT = ("demo-aurore-crm", "demo-api-secret-2026", "aurore-automobiles")
DEMO_ACCOUNTS = (
    ("consumer@demo.vrm.example", None),
    ("dpo@demo.vrm.example", StaffRole.DPO),
    ("admin@demo.vrm.example", StaffRole.ADMIN),
    ("operator@demo.vrm.example", StaffRole.BRAND_OPERATOR),
)
#: The brand the demo brand operator manages (its API clients and webhooks).
DEMO_OPERATED_BRAND = "aurore-automobiles"


@bp.cli.command("init-db")
def init_db() -> None:
    """Create the schema from empty, or upgrade it to the latest migration."""
    schema.upgrade(db.engine)
    click.echo(f"Database ready at revision {schema.current_revision(db.engine)}.")


@bp.cli.command("downgrade-db")
@click.option("--revision", default="base", show_default=True, help="Target revision.")
def downgrade_db(revision: str) -> None:
    """Undo migrations down to REVISION (``base`` empties the schema)."""
    schema.downgrade(db.engine, revision)
    click.echo(f"Database downgraded to {schema.current_revision(db.engine) or 'base'}.")


@bp.cli.command("check-migrations")
def check_migrations() -> None:
    """Fail when the models and the migrations disagree (run on a database at head)."""
    problems = schema.drift(db.engine)
    if problems:
        for problem in problems:
            click.echo(f"drift: {problem}", err=True)
        raise click.ClickException(
            "Models and migrations differ: write a migration (make migration m='...')."
        )
    click.echo("Models and migrations agree.")


@bp.cli.command("seed-demo")
def seed_demo() -> None:
    """Create the demo accounts (idempotent) and print how to sign in."""
    session = db.session
    report = load_demo_catalogue(session)
    for email, role in DEMO_ACCOUNTS:
        account = session.scalars(select(Account).where(Account.email == email)).one_or_none()
        if account is None and role is not None:
            operated = brand_by_slug(session, DEMO_OPERATED_BRAND)
            brand_id = operated.id if operated and role == StaffRole.BRAND_OPERATOR else None
            staff = service.create_staff_account(
                session, email, DEMO_PASSWORD, role, brand_id=brand_id
            )
            date_sign_up(session, staff, utcnow() - timedelta(days=STAFF_CREATED_DAYS_AGO))
        elif account is None:
            registration = service.register_account(
                session,
                email,
                DEMO_PASSWORD,
                locale="en",
                verification_ttl=current_app.config["EMAIL_VERIFICATION_TTL"],
            )
            registration.account.email_verified_at = utcnow()
    db.session.flush()
    consumer = session.scalars(select(Account).where(Account.email == DEMO_ACCOUNTS[0][0])).one()
    seeded = seed_demo_history(session, current_notary(), consumer)
    client_id, secret, brand_slug = DEMO_API_CLIENT
    brand = brand_by_slug(session, brand_slug)
    if brand is not None:
        clients.ensure_client(
            session, brand, client_id, secret, list(clients.SCOPES), utcnow(), "Demo CRM"
        )
        demo_client = clients.find_client(session, client_id)
        if seeded and demo_client is not None:
            seed_demo_activity(session, consumer, demo_client)
    db.commit()
    if report.brands_created:
        click.echo(f"Demo brands created: {', '.join(report.brands_created)}")
    if seeded:
        click.echo(f"Demo consumer history: {seeded} consent change(s)")
    base = current_app.config["PUBLIC_BASE_URL"]
    click.echo("")
    click.echo(f"Demo sign-ins for {base}/login (password: {DEMO_PASSWORD})")
    for email, role in DEMO_ACCOUNTS:
        what = role.value if role else "consumer"
        if role == StaffRole.BRAND_OPERATOR:
            what += f" ({DEMO_OPERATED_BRAND})"
        click.echo(f"  {email:<28} {what}")
    click.echo("")
    click.echo(f"Demo brand API client ({brand_slug}), docs at {base}/api/v1/docs:")
    click.echo(
        f"  curl -u {client_id}:{secret} -d grant_type=client_credentials {base}/oauth/token"
    )
    click.echo("")


@bp.cli.command("create-staff")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in StaffRole]), required=True)
@click.option("--brand", "brand_slug", default=None, help="The brand a brand-operator manages.")
@click.password_option(help="Password for a new account (12 to 128 characters).")
def create_staff(email: str, role: str, brand_slug: str | None, password: str) -> None:
    """Create a staff account, or give an existing account a staff role."""
    brand_id = None
    if role == StaffRole.BRAND_OPERATOR:
        if not brand_slug:
            raise click.BadParameter("a brand-operator needs --brand <slug>", param_hint="--brand")
        brand = brand_by_slug(db.session, brand_slug)
        if brand is None:
            raise click.BadParameter(f"no brand {brand_slug!r}", param_hint="--brand")
        brand_id = brand.id
    elif brand_slug:
        raise click.BadParameter("only a brand-operator is bound to a brand", param_hint="--brand")
    try:
        account = service.create_staff_account(
            db.session, email, password, StaffRole(role), brand_id=brand_id
        )
    except errors.InvalidEmail as exc:
        raise click.BadParameter(f"not a valid email address ({exc.reason})") from exc
    except errors.PasswordRejected as exc:
        raise click.BadParameter(f"password refused: {exc.reason}") from exc
    db.commit()
    click.echo(f"{account.email} is now {role}" + (f" of {brand_slug}." if brand_id else "."))


@bp.cli.command("reset-two-factor")
@click.option("--email", required=True)
@click.option("--passkeys", is_flag=True, help="Also forget the account's passkeys.")
def reset_two_factor_command(email: str, passkeys: bool) -> None:
    """Forget an account's authenticator and recovery codes (lost phone); staff enrol
    again at sign-in. With --passkeys, its passkeys too."""
    account = service.find_account_by_email(db.session, email)
    if account is None:
        raise click.ClickException(f"no account for {email}")
    codes, removed = second_factor.reset_second_steps(db.session, account, passkeys=passkeys)
    db.commit()
    click.echo(f"Two-step verification reset for {account.email}; it is set up again at sign-in.")
    click.echo(f"Unused recovery codes removed: {codes}; passkeys removed: {removed}.")
