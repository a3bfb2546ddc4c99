"""``flask vrm process-erasures``, the cron job, run by an app of its own on a scratch
database: it opens its own connections and commits, as it does in production."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import ScratchPortal, scratch_portal
from tests.mailbox import Mailbox, body
from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import BrandChange
from vrm_portal.clock import utcnow
from vrm_portal.consent import service as consent_service
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change
from vrm_portal.consent.signing import current_notary
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.requests import erasure, service
from vrm_portal.requests.models import DataRequest


class Portal(ScratchPortal):
    def run(self, *args: str) -> Result:
        return self.app.test_cli_runner().invoke(args=["vrm", "process-erasures", *args])


@pytest.fixture
def portal(database_url: str, smtp: tuple[int, Mailbox], tmp_path: Any) -> Iterator[Portal]:
    port, _mailbox = smtp
    with scratch_portal(database_url, port, tmp_path, "erasures", load_demo_catalogue) as made:
        yield Portal(made.app, made.engine)


@pytest.fixture
def mailbox(smtp: tuple[int, Mailbox]) -> Mailbox:
    _port, mailbox = smtp
    mailbox.clear()
    return mailbox


def schedule(portal: Portal, email: str, *, days_ago: int) -> str:
    """A consumer with a consent, whose erasure was asked ``days_ago`` days ago."""
    requested = utcnow() - timedelta(days=days_ago)
    with portal.app.app_context(), Session(portal.engine, expire_on_commit=False) as session:
        account = Account(email=email, locale="fr")
        session.add(account)
        session.flush()
        purpose = consent_service.find_purpose(session, "maison-berlingot", "sms-offers")
        consent_service.grant(
            session,
            current_notary(),
            account,
            purpose,
            shown_version=purpose.current_version,
            change=Change(CollectionMethod.PORTAL, "fr", requested - timedelta(days=1)),
        )
        request = service.schedule_erasure(session, account, requested)
        session.commit()
        return request.reference


def test_due_erasures_are_done_and_each_consumer_gets_a_last_email(
    portal: Portal, mailbox: Mailbox
) -> None:
    due = schedule(portal, "due@example.com", days_ago=31)
    waiting = schedule(portal, "waiting@example.com", days_ago=2)

    result = portal.run("--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"erased": [due], "failed": []}
    with Session(portal.engine) as session:
        emails = set(session.scalars(select(Account.email)))
        assert emails == {"waiting@example.com"}
        statuses = dict(session.execute(select(DataRequest.reference, DataRequest.status)).all())
        assert statuses == {due: "completed", waiting: "scheduled"}
        assert session.scalars(select(BrandChange.kind).order_by(BrandChange.seq)).all() == [
            "consent.granted",
            "consent.granted",
            "consent.withdrawn",
            "consumer.erased",
        ]
    farewell = mailbox.wait_for("due@example.com")
    assert farewell["Subject"] == "Votre compte a été supprimé"
    assert due in body(farewell)
    assert mailbox.to("waiting@example.com") == []

    again = portal.run()
    assert again.exit_code == 0
    assert again.output.strip() == "0 account(s) erased, 0 failed."


def test_as_of_looks_ahead_and_bad_dates_are_refused(portal: Portal) -> None:
    waiting = schedule(portal, "waiting@example.com", days_ago=2)
    bad = portal.run("--as-of", "next tuesday")
    assert bad.exit_code == 2
    assert "'next tuesday' is not an ISO 8601 date and time" in bad.output

    ahead = (utcnow() + timedelta(days=29)).isoformat()
    result = portal.run("--as-of", ahead)
    assert result.exit_code == 0, result.output
    assert f"erased: request {waiting}" in result.output


def test_a_failed_erasure_exits_1_and_stays_scheduled(
    portal: Portal, monkeypatch: pytest.MonkeyPatch, mailbox: Mailbox
) -> None:
    reference = schedule(portal, "fragile@example.com", days_ago=40)

    def broken(*_args: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(erasure, "delete_account_rows", broken)
    result = portal.run()
    assert result.exit_code == 1
    assert "0 account(s) erased, 1 failed." in result.output
    with Session(portal.engine) as session:
        assert session.scalar(select(Account.email)) == "fragile@example.com"
        request = session.scalar(select(DataRequest).where(DataRequest.reference == reference))
        assert request is not None
        assert request.status == "scheduled"
        assert request.detail["failed_attempts"] == 1
        assert session.scalars(select(BrandChange.kind)).all() == ["consent.granted"]
    assert mailbox.to("fragile@example.com") == []
