"""Operator commands of the ledger (``flask vrm verify-ledger``, ``expire-consents``) run
against an app of their own on a scratch database: they open their own connections, so
they only see committed data, never the rolled-back transaction of the other tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.conftest import ScratchPortal, scratch_portal
from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod, ConsentEvent
from vrm_portal.consent.service import Change
from vrm_portal.consent.signing import current_notary
from vrm_portal.demo.catalogue import load_demo_catalogue

Portal = ScratchPortal


def _seed(session: Session) -> None:
    load_demo_catalogue(session)
    session.add(Account(email="carol@example.com"))


@pytest.fixture
def portal(database_url, smtp, tmp_path) -> Iterator[Portal]:
    """A second app over a freshly migrated scratch database with the demo catalogue."""
    port, _mailbox = smtp
    with scratch_portal(database_url, port, tmp_path, "commands", _seed) as portal:
        yield portal


def record(portal: Portal, *, days_ago: int = 0) -> list[ConsentEvent]:
    """Carol gives and withdraws a few consents, committed; returns the ledger."""
    with portal.app.app_context(), Session(portal.engine, expire_on_commit=False) as session:
        notary = current_notary()
        carol = session.scalar(select(Account).where(Account.email == "carol@example.com"))
        when = utcnow() - timedelta(days=days_ago)
        change = Change(CollectionMethod.PORTAL, "en", when)
        sms = service.find_purpose(session, "maison-berlingot", "sms-offers")
        analytics = service.find_purpose(session, "aurore-automobiles", "analytics")
        service.grant(session, notary, carol, sms, shown_version=1, change=change)
        service.grant(session, notary, carol, analytics, shown_version=1, change=change)
        service.withdraw(session, notary, carol, analytics, change=change)
        session.commit()
        return list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.seq)))


def run(portal: Portal, *args: str):
    """``flask vrm <args>``, with the app context the ``flask`` command provides."""
    with portal.app.app_context():
        return portal.app.test_cli_runner().invoke(args=["vrm", *args])


def verify_ledger(portal: Portal):
    return run(portal, "verify-ledger")


@pytest.mark.parametrize("command", ["verify-ledger", "expire-consents"])
def test_the_ledger_commands_run_like_the_other_vrm_commands(portal, command):
    """Like ``vrm seed-demo`` in tests/test_cli.py: no app context pushed by the caller.

    ``flask`` itself pushes one, but ``app.test_cli_runner()`` and any other embedding of
    ``app.cli`` do not, so each command must ask for it (``with_appcontext``).
    """
    result = portal.app.test_cli_runner().invoke(args=["vrm", command])
    assert result.exit_code == 0, (result.output, result.exception)


def test_verify_ledger_reports_an_intact_chain(portal):
    empty = verify_ledger(portal)
    assert empty.exit_code == 0, empty.output
    assert "Ledger OK: 0 event(s)" in empty.output
    record(portal)
    result = verify_ledger(portal)
    assert result.exit_code == 0, result.output
    assert "Ledger OK: 3 event(s) verified, chain intact." in result.output


def test_verify_ledger_names_the_first_altered_event_and_fails(portal):
    events = record(portal)
    target = events[1]
    with portal.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "ALTER TABLE consent_events DISABLE TRIGGER consent_events_append_only"
            )
        else:
            connection.exec_driver_sql("DROP TRIGGER consent_events_no_update")
        connection.execute(
            text("UPDATE consent_events SET body = replace(body, :old, :new) WHERE seq = :seq"),
            {"old": '"aurore-automobiles"', "new": '"maison-berlingot"', "seq": target.seq},
        )
    result = verify_ledger(portal)
    assert result.exit_code == 1, result.output
    assert f"Ledger ALTERED at event #{target.seq} ({target.event_id})" in result.output
    assert "1 event(s) before it are intact" in result.output


def test_expire_consents_records_each_lapsed_consent_once(portal):
    record(portal, days_ago=400)  # sms-offers lasts 365 days; analytics was withdrawn
    first = run(portal, "expire-consents")
    assert first.exit_code == 0, first.output
    assert "1 consent(s) expired." in first.output
    second = run(portal, "expire-consents")
    assert "0 consent(s) expired." in second.output
    with Session(portal.engine) as session:
        events = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.seq)))
    assert [e.action for e in events] == ["granted", "granted", "withdrawn", "expired"]
    assert (events[-1].brand_slug, events[-1].purpose_key) == ("maison-berlingot", "sms-offers")
    assert verify_ledger(portal).exit_code == 0
