"""Operator commands, run through Flask's CLI runner against the test database."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import PASSWORD, sign_in, submit
from vrm_portal.accounts import passwords
from vrm_portal.accounts.models import Account
from vrm_portal.cli import DEMO_ACCOUNTS, DEMO_PASSWORD
from vrm_portal.history.coverage import covered_record_ids
from vrm_portal.history.models import AccessRecord, Interaction


def test_seed_demo_creates_the_demo_sign_ins_once(app, connection, db_session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["vrm", "seed-demo"])
    second = runner.invoke(args=["vrm", "seed-demo"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert DEMO_PASSWORD in first.output
    emails = [email for email, _role in DEMO_ACCOUNTS]
    accounts = db_session.scalars(select(Account).where(Account.email.in_(emails))).all()
    assert sorted(a.email for a in accounts) == sorted(emails)
    assert all(a.is_verified for a in accounts)
    roles = {a.email: a.staff_role for a in accounts}
    assert roles["dpo@demo.vrm.example"] == "dpo"
    assert roles["admin@demo.vrm.example"] == "admin"
    assert roles["consumer@demo.vrm.example"] is None


def test_create_staff_makes_a_verified_staff_account(app, connection, db_session):
    result = app.test_cli_runner().invoke(
        args=["vrm", "create-staff", "--email", "Officer@Example.com", "--role", "dpo"],
        input="a long enough passphrase\na long enough passphrase\n",
    )
    assert result.exit_code == 0, result.output
    account = db_session.scalars(
        select(Account).where(Account.email == "officer@example.com")
    ).one()
    assert account.staff_role == "dpo"
    assert account.is_verified
    assert passwords.verify_password(account.password_hash, "a long enough passphrase")


def test_create_staff_refuses_a_short_password_and_creates_nothing(app, connection, db_session):
    result = app.test_cli_runner().invoke(
        args=["vrm", "create-staff", "--email", "short@example.com", "--role", "admin"],
        input="too short\ntoo short\n",
    )
    assert result.exit_code != 0
    assert "password refused" in result.output
    created = db_session.scalars(select(Account).where(Account.email == "short@example.com"))
    assert created.first() is None


def test_check_migrations_passes_on_the_migrated_test_database(app, connection):
    result = app.test_cli_runner().invoke(args=["vrm", "check-migrations"])
    assert result.exit_code == 0, result.output
    assert "agree" in result.output


def test_promoting_a_signed_in_consumer_ends_their_sessions(app, client, make_account):
    make_account("carol@example.com")
    sign_in(client, "carol@example.com")
    assert client.get("/account/").status_code == 200

    result = app.test_cli_runner().invoke(
        args=["vrm", "create-staff", "--email", "carol@example.com", "--role", "admin"],
        input="unused passphrase here\nunused passphrase here\n",
    )

    assert result.exit_code == 0, result.output
    assert client.get("/account/").status_code == 302
    again = submit(client, "/login", {"email": "carol@example.com", "password": PASSWORD})
    assert again.location == "/login/two-factor/setup"


def test_seed_demo_gives_my_data_something_to_show_once(app, connection, db_session):
    """The demo consumer's timeline and "who read my data" are not empty, and a second
    run adds nothing."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["vrm", "seed-demo"]).exit_code == 0
    assert runner.invoke(args=["vrm", "seed-demo"]).exit_code == 0
    consumer = db_session.scalars(
        select(Account).where(Account.email == "consumer@demo.vrm.example")
    ).one()
    interactions = db_session.scalars(
        select(Interaction.type).where(Interaction.account_id == consumer.id)
    ).all()
    assert sorted(interactions) == ["service-visit", "test-drive"]
    covered = db_session.scalars(
        select(AccessRecord.kind).where(AccessRecord.id.in_(covered_record_ids(consumer.id)))
    ).all()
    assert sorted(covered) == ["consumer", "consumers"]
