"""Forms that could reveal whether an address has an account do the same work for every
address: they check the form and enqueue one job, and the job decides what to send.

The app here queues jobs (a Huey SQLite storage with no consumer) instead of running
them at once, so each request's own SQL statements can be compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD, app_overrides, sign_in, submit
from vrm_portal import create_app
from vrm_portal.extensions import db, limiter
from vrm_portal.jobs.models import Job


@pytest.fixture
def queueing_app(database_url: str, smtp, tmp_path: Path, connection) -> Iterator[Flask]:
    app = create_app(
        app_overrides(database_url, smtp[0], tmp_path)
        | {"JOBS_URL": f"sqlite:///{tmp_path / 'jobs.sqlite3'}"}
    )
    db.bind_to_connection(app, connection)
    with app.app_context():
        limiter.reset()
    yield app
    app.extensions["vrm_jobs"].close()
    app.extensions["vrm_db"].engine.dispose()


def statements_of(app: Flask, connection, action) -> list[str]:
    """The SQL the request runs (text only: the values differ), with the jobs' ids."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        seen.append(re.sub(r"sa_savepoint_\d+", "sa_savepoint_N", statement))

    event.listen(connection, "before_cursor_execute", record)
    try:
        response = action()
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert response.status_code == 302, response.get_data(as_text=True)
    return seen


def _queued(db_session: Session) -> list[str]:
    return [job.kind for job in db_session.scalars(select(Job).order_by(Job.created_at))]


def test_forgot_password_does_the_same_work_for_a_known_and_an_unknown_address(
    queueing_app: Flask, connection, db_session, make_account, mailbox
):
    make_account("known@example.com")
    client = queueing_app.test_client()
    form_page = "/password/forgot"

    def ask(email: str):
        return lambda: submit(client, form_page, {"email": email})

    submit(client, form_page, {"email": "warm-up@example.com"})  # caches, statement compile
    known = statements_of(queueing_app, connection, ask("known@example.com"))
    unknown = statements_of(queueing_app, connection, ask("nobody@example.com"))
    assert known == unknown
    assert sum("INSERT INTO jobs" in statement for statement in known) == 1
    assert not any("accounts" in statement for statement in known)
    assert _queued(db_session)[-2:] == ["accounts.password_reset", "accounts.password_reset"]
    assert mailbox.messages == []  # nothing was sent by the requests themselves


def test_registration_does_the_same_work_for_a_new_and_a_taken_address(
    queueing_app: Flask, connection, db_session, make_account, mailbox
):
    make_account("taken@example.com")
    client = queueing_app.test_client()

    def register(email: str):
        return lambda: submit(
            client,
            "/register",
            {"email": email, "password": PASSWORD, "password_confirm": PASSWORD},
        )

    register("warm-up@example.com")()
    taken = statements_of(queueing_app, connection, register("taken@example.com"))
    new = statements_of(queueing_app, connection, register("new@example.com"))
    assert taken == new
    assert not any("accounts" in statement for statement in taken)
    assert _queued(db_session)[-2:] == ["accounts.registration", "accounts.registration"]
    assert mailbox.messages == []


def test_email_change_does_the_same_work_whether_the_new_address_is_taken(
    queueing_app: Flask, connection, db_session, make_account, mailbox
):
    make_account("alice@example.com")
    make_account("taken@example.com")
    client = queueing_app.test_client()
    sign_in(client, "alice@example.com")

    def change(email: str):
        return lambda: submit(
            client, "/account/email", {"new_email": email, "current_password": PASSWORD}
        )

    change("warm-up@example.com")()
    taken = statements_of(queueing_app, connection, change("taken@example.com"))
    free = statements_of(queueing_app, connection, change("free@example.com"))
    assert taken == free
    assert _queued(db_session)[-2:] == ["accounts.email_change", "accounts.email_change"]
    assert mailbox.messages == []
