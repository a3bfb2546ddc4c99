"""Fixtures for the reminder tests: the demo catalogue, consents given on chosen dates,
and the daily job run the way the scheduler runs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consent.conftest import alice, catalogue, notary, purpose_of
from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change, Notary
from vrm_portal.extensions import db
from vrm_portal.jobs.models import Job
from vrm_portal.jobs.service import enqueue
from vrm_portal.reminders.models import ReminderDigest

__all__ = ["alice", "catalogue", "notary"]


@pytest.fixture
def give(db_session: Session, notary: Notary, catalogue: None) -> Callable[..., None]:
    """``give(account, brand, purpose, days_ago=0)``: a consent granted ``days_ago`` days
    ago (so that it expires ``validity_days - days_ago`` days from now)."""

    def grant(account: Account, brand: str, key: str, *, days_ago: int = 0) -> None:
        purpose = purpose_of(db_session, brand, key)
        moment = utcnow() - timedelta(days=days_ago)
        result = service.grant(
            db_session,
            notary,
            account,
            purpose,
            shown_version=purpose.current_version,
            change=Change(CollectionMethod.IMPORT, account.locale or "en", moment),
        )
        assert result.outcome is service.Outcome.RECORDED
        db_session.commit()

    return grant


@pytest.fixture
def take_back(db_session: Session, notary: Notary) -> Callable[[Account, str, str], None]:
    def withdraw(account: Account, brand: str, key: str) -> None:
        purpose = purpose_of(db_session, brand, key)
        result = service.withdraw(
            db_session,
            notary,
            account,
            purpose,
            change=Change(CollectionMethod.PORTAL, "en", utcnow()),
        )
        assert result.outcome is service.Outcome.RECORDED
        db_session.commit()

    return withdraw


def run_daily(app: Flask, db_session: Session, **payload: int) -> Job:
    """Queue a ``schedule.reminders`` job; the test engine runs it (and the digest jobs
    it queues) as soon as it is committed. Returns the finished job."""
    with app.app_context():
        job_id = enqueue(db.session, "schedule.reminders", dict(payload))
        db.commit()
    job = db_session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job


def digests_of(db_session: Session, account: Account) -> list[ReminderDigest]:
    return list(
        db_session.scalars(
            select(ReminderDigest)
            .where(ReminderDigest.account_id == account.id)
            .execution_options(populate_existing=True)
        )
    )
