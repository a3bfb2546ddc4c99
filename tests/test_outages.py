"""When a dependency is down: the database (503 with Retry-After, never a 500; the pool
recovers on its own), Redis (rate limits count per process, requests still succeed,
jobs wait in the database), and ``/readyz`` naming what is down.

bench/faults.py checks the same under load, with the real servers stopped and started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url, select, text
from sqlalchemy.exc import OperationalError

from tests.conftest import app_overrides
from vrm_portal import create_app
from vrm_portal.errors import UNAVAILABLE_RETRY_AFTER, database_unavailable
from vrm_portal.extensions import db
from vrm_portal.jobs.models import Job, JobStatus
from vrm_portal.mail import send_later

ROOT = Path(__file__).resolve().parent.parent
#: Nothing listens there: every connection attempt is refused at once.
CLOSED_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"
CLOSED_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def database_down(smtp, tmp_path):
    """An app whose database refuses every connection (WTF CSRF off: the form's token is
    tested elsewhere; here the request must reach the database)."""
    overrides = app_overrides(CLOSED_DATABASE, smtp[0], tmp_path) | {"WTF_CSRF_ENABLED": False}
    app = create_app(overrides)

    def touches_the_database() -> str:
        return str(db.session.execute(text("SELECT 1")).scalar())

    app.add_url_rule("/_test_db", "test_db", touches_the_database)
    yield app
    app.extensions["vrm_db"].engine.dispose()


def _assert_unavailable_page(response) -> str:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(UNAVAILABLE_RETRY_AFTER)
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Temporarily unavailable" in page
    assert "try again" in page
    assert "Traceback" not in page
    assert "OperationalError" not in page
    return page


def test_a_page_answers_503_with_retry_after_when_the_database_is_down(database_down):
    response = database_down.test_client().get("/_test_db")
    _assert_unavailable_page(response)


def test_sign_in_answers_503_page_when_the_database_is_down(database_down):
    response = database_down.test_client().post(
        "/login", data={"email": "alice@example.com", "password": "correct horse battery"}
    )
    page = _assert_unavailable_page(response)
    # The page needs no database: no navigation of a signed-in user, no flashes.
    assert "Sign out" not in page


def test_a_signed_in_consumer_gets_the_503_page_too(database_down):
    """Loading the signed-in user fails first (before any view): the page still comes,
    in a language chosen without the account, and without the user's navigation."""
    client = database_down.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "a-session-token"
        session["_fresh"] = True
    response = client.get("/consents/", headers={"Accept-Language": "fr"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(UNAVAILABLE_RETRY_AFTER)
    page = response.get_data(as_text=True)
    assert "Traceback" not in page
    assert 'lang="fr"' in page


def test_the_api_answers_problem_json_503_when_the_database_is_down(database_down):
    client = database_down.test_client()
    for response in (
        client.get("/api/v1/changes", headers={"Authorization": "Bearer not-checked-yet"}),
        client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("id", "secret")
        ),
    ):
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.headers["Retry-After"] == str(UNAVAILABLE_RETRY_AFTER)
        body = response.get_json()
        assert body["status"] == 503
        assert body["title"] == "Temporarily unavailable"


def test_readyz_names_the_database_when_it_is_down(database_down):
    response = database_down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "checks": {"database": "unreachable"}}


def test_a_commit_that_loses_the_database_answers_503_not_500(
    database_url, smtp, tmp_path, connection
):
    """The commit runs after the view (``after_request``): its failure is a 503 too."""
    app = create_app(app_overrides(database_url, smtp[0], tmp_path))
    # As in production: an error outside the view is answered, not raised to the caller.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    db.bind_to_connection(app, connection)

    def lost_at_commit() -> str:
        session = db.session
        session.execute(select(1))

        def commit() -> None:
            raise OperationalError(
                "COMMIT", {}, Exception("server closed the connection unexpectedly")
            )

        session.commit = commit  # type: ignore[method-assign]
        return "saved"

    app.add_url_rule("/_test_commit", "test_commit", lost_at_commit)
    response = app.test_client().get("/_test_commit")
    app.extensions["vrm_db"].engine.dispose()
    _assert_unavailable_page(response)


def test_what_counts_as_the_database_being_unavailable():
    refused = OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert database_unavailable(refused)
    wrapped = RuntimeError("while rendering")
    wrapped.__cause__ = refused
    assert database_unavailable(wrapped)
    assert not database_unavailable(RuntimeError("a bug"))
    assert not database_unavailable(None)


def test_readyz_says_degraded_and_names_redis_when_it_is_down(app, client, monkeypatch):
    """Redis down: still ready (the portal serves without it), and the checks say what."""
    monkeypatch.setitem(app.config, "REDIS_URL", CLOSED_REDIS)
    monkeypatch.setitem(app.config, "JOBS_URL", "redis://127.0.0.1:1/1")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "degraded",
        "checks": {"database": "ok", "rate_limits": "unreachable", "jobs_queue": "unreachable"},
    }


def test_a_job_enqueued_while_the_queue_is_down_waits_in_the_database(
    database_url, smtp, tmp_path, connection, db_session
):
    """The request succeeds; the job row is committed, queued, for the recovery pass."""
    overrides = app_overrides(database_url, smtp[0], tmp_path) | {"JOBS_URL": CLOSED_REDIS}
    app = create_app(overrides)
    db.bind_to_connection(app, connection)
    address = f"queue-down-{uuid.uuid4().hex[:8]}@example.com"

    def ask_for_an_email() -> str:
        return send_later(address, "Hello", "verify_email", locale="en", link="http://x")

    app.add_url_rule("/_test_enqueue", "test_enqueue", ask_for_an_email)
    response = app.test_client().get("/_test_enqueue")
    app.extensions["vrm_jobs"].close()
    app.extensions["vrm_db"].engine.dispose()
    assert response.status_code == 200
    job = db_session.get(Job, response.get_data(as_text=True))
    assert job is not None
    assert job.status == JobStatus.QUEUED.value


#: A gunicorn worker's view of a Redis that is down: sign-in attempts on one address.
LIMITS_WORKER = """
import json, sys
from vrm_portal import create_app

database_url, redis_url = sys.argv[1], sys.argv[2]
app = create_app({
    "DATABASE_URL": database_url,
    "REDIS_URL": redis_url,
    "WTF_CSRF_ENABLED": False,
    "ARGON2_PARAMETERS": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
})
client = app.test_client()
form = {"email": "nobody@example.com", "password": "wrong 1234"}
codes = [client.post("/login", data=form).status_code for _ in range(6)]
codes.append(client.get("/readyz").status_code)
app.extensions["vrm_db"].engine.dispose()
print(json.dumps(codes))
"""


def test_with_redis_down_the_rate_limits_count_in_the_process(scratch_database_url):
    """No 500: the per-address budget (5 per minute) still applies, counted in memory."""
    from vrm_portal import schema
    from vrm_portal.db import create_db_engine

    engine = create_db_engine(scratch_database_url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()
    env = {**os.environ, "VRM_ENV": "testing", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", LIMITS_WORKER, scratch_database_url, CLOSED_REDIS],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    assert codes == [422] * 5 + [429, 200]
    assert "rate-limit storage unreachable" in result.stderr


def _postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def test_the_pool_recovers_after_the_database_drops_every_connection(database_url, smtp, tmp_path):
    """pg_terminate_backend on the app's connections: the next request still succeeds."""
    if not _postgresql(database_url):
        pytest.skip("PostgreSQL only (VRM_TEST_DATABASE_URL)")
    name = f"vrm_outage_{uuid.uuid4().hex[:8]}"
    url = make_url(database_url).update_query_dict({"application_name": name})
    app = create_app(app_overrides(url.render_as_string(hide_password=False), smtp[0], tmp_path))

    def touches_the_database() -> str:
        return str(db.session.execute(text("SELECT 1")).scalar())

    app.add_url_rule("/_test_db", "test_db", touches_the_database)
    client = app.test_client()
    try:
        assert client.get("/_test_db").status_code == 200
        dsn = make_url(database_url).set(drivername="postgresql")
        with psycopg.connect(dsn.render_as_string(hide_password=False), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            ).fetchone()
        assert killed is not None
        assert killed[0] >= 1
        assert client.get("/_test_db").status_code == 200
    finally:
        app.extensions["vrm_db"].engine.dispose()
