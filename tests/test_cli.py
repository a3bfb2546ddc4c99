"""Operator commands, run through Flask's CLI runner against the test database."""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlalchemy import select

from tests.conftest import PASSWORD, sign_in, submit
from vrm_portal.accounts import passwords
from vrm_portal.accounts.models import Account, AccountEvent, EmailToken
from vrm_portal.brands.models import ApiClient, Brand, BrandChange, BrandRelationship
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.cli import DEMO_ACCOUNTS, DEMO_PASSWORD
from vrm_portal.clock import utcnow
from vrm_portal.consent.models import (
    ConsentEvent,
    ConsentReceipt,
    ConsentState,
    Purpose,
    PurposeVersion,
)
from vrm_portal.demo.history import DEMO_CHANGES
from vrm_portal.history.coverage import covered_record_ids
from vrm_portal.history.models import AccessRecord, Interaction
from vrm_portal.interests.models import DeclaredInterest, Intent, IntentBrand, Topic


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
    operator = next(a for a in accounts if a.email == "operator@demo.vrm.example")
    assert operator.staff_role == "brand-operator"
    assert operator.staff_brand_id == brand_by_slug(db_session, "aurore-automobiles").id
    assert re.search(
        r"operator@demo\.vrm\.example +brand-operator \(aurore-automobiles\)", first.output
    )


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


def test_seed_demo_tells_a_history_in_order(app, connection, db_session):
    """Texts are published before they are agreed to, accounts exist before their first
    event, relationships start with the first consent, and what brands recorded or read
    comes after the relationship; nothing is in the future."""
    assert app.test_cli_runner().invoke(args=["vrm", "seed-demo"]).exit_code == 0
    now = utcnow()
    emails = [email for email, _role in DEMO_ACCOUNTS]
    accounts = db_session.scalars(select(Account).where(Account.email.in_(emails))).all()
    assert len(accounts) == len(DEMO_ACCOUNTS)
    consents_seen = 0
    for account in accounts:
        who = account.email
        assert account.created_at <= now, who
        assert account.email_verified_at is not None
        assert account.created_at <= account.email_verified_at <= now, who
        for moment in db_session.scalars(
            select(AccountEvent.created_at).where(AccountEvent.account_id == account.id)
        ):
            assert account.created_at <= moment <= now, who
        for token in db_session.scalars(
            select(EmailToken).where(EmailToken.account_id == account.id)
        ):
            assert account.created_at <= token.created_at <= now, who

        events = db_session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.subject_key == account.subject_key)
            .order_by(ConsentEvent.seq)
        ).all()
        times = [event.occurred_at for event in events]
        assert times == sorted(times), f"{who}: the ledger's order is not the calendar's"
        first_by_brand: dict[str, datetime] = {}
        for event in events:
            consents_seen += 1
            what = f"{who} {event.action} {event.brand_slug}/{event.purpose_key}"
            body = json.loads(event.body)
            purpose = db_session.scalars(
                select(Purpose)
                .join(Brand, Brand.id == Purpose.brand_id)
                .where(Brand.slug == event.brand_slug, Purpose.key == event.purpose_key)
            ).one()
            version = db_session.scalars(
                select(PurposeVersion).where(
                    PurposeVersion.purpose_id == purpose.id,
                    PurposeVersion.version == body["purpose_version"],
                )
            ).one()
            assert purpose.brand.created_at <= purpose.created_at <= version.published_at, what
            assert version.published_at <= event.occurred_at <= now, what
            assert account.created_at <= event.occurred_at, what
            first_by_brand.setdefault(event.brand_slug, event.occurred_at)
        for receipt in db_session.scalars(
            select(ConsentReceipt).where(ConsentReceipt.account_id == account.id)
        ):
            event = db_session.get(ConsentEvent, receipt.event_seq)
            assert event is not None
            assert receipt.created_at == event.occurred_at, who
        for state in db_session.scalars(
            select(ConsentState).where(ConsentState.account_id == account.id)
        ):
            version = db_session.scalars(
                select(PurposeVersion).where(
                    PurposeVersion.purpose_id == state.purpose_id,
                    PurposeVersion.version == state.version,
                )
            ).one()
            if state.granted_at is not None:
                assert version.published_at <= state.granted_at <= state.updated_at, who
            assert state.updated_at <= now, who

        relationships = db_session.scalars(
            select(BrandRelationship).where(BrandRelationship.account_id == account.id)
        ).all()
        assert sorted(r.brand.slug for r in relationships) == sorted(first_by_brand), who
        for relationship in relationships:
            what = f"{who} and {relationship.brand.slug}"
            since = relationship.created_at
            assert since == first_by_brand[relationship.brand.slug], what
            for moment in db_session.scalars(
                select(BrandChange.occurred_at).where(
                    BrandChange.pairwise_id == relationship.pairwise_id
                )
            ):
                assert since <= moment <= now, what
            for interaction in db_session.scalars(
                select(Interaction).where(
                    Interaction.account_id == account.id,
                    Interaction.brand_id == relationship.brand_id,
                )
            ):
                client = db_session.get(ApiClient, interaction.client_pk)
                assert client is not None
                assert since <= interaction.occurred_at <= interaction.recorded_at <= now, what
                assert client.created_at <= interaction.recorded_at, what
            for record in db_session.scalars(
                select(AccessRecord).where(
                    AccessRecord.id.in_(covered_record_ids(account.id, relationship.brand_id))
                )
            ):
                client = db_session.get(ApiClient, record.client_pk)
                assert client is not None
                assert since <= record.at <= now, what
                assert client.created_at <= record.at, what
            for moment in db_session.scalars(
                select(DeclaredInterest.created_at)
                .join(Topic, Topic.id == DeclaredInterest.topic_id)
                .where(
                    DeclaredInterest.account_id == account.id,
                    Topic.brand_id == relationship.brand_id,
                )
            ):
                assert since <= moment <= now, what
            for moment in db_session.scalars(
                select(Intent.created_at)
                .join(IntentBrand, IntentBrand.intent_id == Intent.id)
                .where(
                    Intent.account_id == account.id,
                    IntentBrand.brand_id == relationship.brand_id,
                )
            ):
                assert since <= moment <= now, what
    assert consents_seen == len(DEMO_CHANGES)
