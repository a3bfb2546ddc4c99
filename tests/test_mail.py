"""Outgoing mail: the development outbox, SMTP failures, and mail only after commit."""

from __future__ import annotations

import socket
from email import message_from_bytes
from email.policy import default as default_policy

from sqlalchemy import select

from tests.conftest import PASSWORD, app_overrides, submit
from vrm_portal import create_app
from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.jobs.models import Job, JobStatus
from vrm_portal.mail import send_later


def _app(database_url, smtp_port, tmp_path, connection, **extra):
    app = create_app({**app_overrides(database_url, smtp_port, tmp_path), **extra})
    db.bind_to_connection(app, connection)
    return app


def _register(app, email="dana@example.com"):
    client = app.test_client()
    return submit(
        client, "/register", {"email": email, "password": PASSWORD, "password_confirm": PASSWORD}
    )


def test_outbox_backend_writes_each_message_as_an_eml_file(
    database_url, smtp, tmp_path, connection, mailbox
):
    outbox = tmp_path / "outbox"
    app = _app(
        database_url,
        smtp[0],
        tmp_path,
        connection,
        MAIL_BACKEND="outbox",
        MAIL_OUTBOX_DIR=str(outbox),
    )
    try:
        assert _register(app).status_code == 302
    finally:
        app.extensions["vrm_db"].engine.dispose()
    files = list(outbox.glob("*.eml"))
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert message["To"] == "dana@example.com"
    assert "/verify-email/" in message.get_body(preferencelist=("plain",)).get_content()
    assert mailbox.messages == []


def test_an_unreachable_smtp_server_fails_no_page_and_loses_no_mail(
    database_url, smtp, tmp_path, connection, db_session, mailbox
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app = _app(database_url, closed_port, tmp_path, connection)
    try:
        response = _register(app)
        assert response.status_code == 302
        account = db_session.scalars(
            select(Account).where(Account.email == "dana@example.com")
        ).one()
        job = db_session.scalars(select(Job).where(Job.kind == "accounts.verification_email")).one()
        assert job.account_id == account.id
        assert job.status == JobStatus.QUEUED
        assert job.attempts == 1
        assert "ConnectionRefusedError" in (job.last_error or "")
        assert job.next_attempt_at > utcnow()

        # The mail server is back; the retry's time comes: the email goes, once.
        app.config["SMTP_PORT"] = smtp[0]
        job.next_attempt_at = utcnow()
        db_session.commit()
        outcome = app.extensions["vrm_jobs"].run_now(job.id)
        assert outcome.status == "done"
        assert len(mailbox.to("dana@example.com")) == 1
        assert app.extensions["vrm_jobs"].run_now(job.id).status == "skipped"
        assert len(mailbox.to("dana@example.com")) == 1
    finally:
        app.extensions["vrm_db"].engine.dispose()


def test_no_mail_leaves_for_work_that_was_rolled_back(
    database_url, smtp, tmp_path, connection, mailbox
):
    app = _app(database_url, smtp[0], tmp_path, connection)

    def fails_after_queueing_a_mail() -> str:
        send_later("eve@example.com", "Should never arrive", "email_in_use")
        raise RuntimeError("crash after the mail was queued")

    app.add_url_rule("/_test_fail", "test_fail", fails_after_queueing_a_mail)
    try:
        response = app.test_client().get("/_test_fail")
    finally:
        app.extensions["vrm_db"].engine.dispose()
    assert response.status_code == 500
    assert mailbox.to("eve@example.com") == []
