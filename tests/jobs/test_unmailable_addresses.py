"""An address with a line break never gets stored, and a job that would mail one (a row
written before these checks, a payload from an older release) fails at once, cleanly,
without retries and without sending (outside security test, "Account security", Low:
header injection through CR/LF in a stored address).

The provider path (social sign-in) is covered by
``tests/accounts/social/test_provider_addresses.py``.
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD, sign_in, submit
from vrm_portal.accounts.models import Account
from vrm_portal.extensions import db
from vrm_portal.jobs import service
from vrm_portal.jobs.models import Job, JobStatus

INJECTED = "eve@example.com\r\nBcc: mallory@example.net"
ADDRESSES = [
    INJECTED,
    "eve@example.com\nBcc: mallory@example.net",
    "eve@example.com\rX: y",
    "eve@exa\r\nmple.com",
]


def _jobs(db_session: Session) -> list[Job]:
    db_session.expire_all()
    return list(db_session.scalars(select(Job).order_by(Job.created_at)))


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_sign_up_form_stores_no_address_with_a_line_break(client, db_session, mailbox, address):
    response = submit(
        client,
        "/register",
        {"email": address, "password": PASSWORD, "password_confirm": PASSWORD},
    )
    assert response.status_code in (200, 400, 422)
    assert db_session.scalar(select(func.count()).select_from(Account)) == 0
    assert _jobs(db_session) == []
    assert mailbox.messages == []


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_change_email_form_stores_no_address_with_a_line_break(
    client, make_account, db_session, mailbox, address
):
    make_account("alice@example.com")
    sign_in(client)
    response = submit(
        client, "/account/email", {"new_email": address, "current_password": PASSWORD}
    )
    assert response.status_code in (200, 400, 422)
    db_session.expire_all()
    assert all(
        "\r" not in a.email and "\n" not in a.email for a in db_session.scalars(select(Account))
    )
    assert [job.kind for job in _jobs(db_session)] == []
    assert mailbox.messages == []


def _run(app: Flask, kind: str, payload=None, account_id=None) -> str:
    with app.app_context():
        job_id = service.enqueue(db.session, kind, payload, account_id=account_id)
        db.commit()
    return job_id


def test_a_verification_email_to_a_stored_address_with_a_line_break_fails_at_once(
    app, connection, db_session, make_account, mailbox
):
    account = make_account("eve@example.com", verified=False)
    db_session.execute(update(Account).where(Account.id == account.id).values(email=INJECTED))
    db_session.commit()

    job_id = _run(app, "accounts.verification_email", account_id=account.id)

    job = db_session.get(Job, job_id, populate_existing=True)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert "cannot build the message" in (job.last_error or "")
    assert mailbox.messages == []


def test_an_email_change_job_for_an_address_with_a_line_break_fails_at_once(
    app, connection, db_session, make_account, mailbox
):
    account = make_account("alice@example.com")

    job_id = _run(app, "accounts.email_change", {"new_email": INJECTED}, account.id)

    job = db_session.get(Job, job_id, populate_existing=True)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert "cannot build the message" in (job.last_error or "")
    assert mailbox.messages == []
