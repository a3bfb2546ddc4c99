"""The token endpoint gives one answer, after the same work, for an unknown client, a
revoked one and a wrong secret: it must not tell which client ids exist (outside
security test, "Account security", Low)."""

from __future__ import annotations

import base64
import re

from sqlalchemy import event

from tests.api.conftest import request_token
from vrm_portal.api import oauth
from vrm_portal.brands import clients
from vrm_portal.clock import utcnow

#: Headers that may differ between two answers whatever they say.
_PER_RESPONSE = {"Date", "Content-Length"}


def _answer(response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in _PER_RESPONSE}
    return response.status_code, response.get_data(), headers


def test_unknown_client_revoked_client_and_wrong_secret_get_the_same_answer(
    brand_api, client, db_session
):
    api = brand_api()
    revoked = brand_api()
    clients.revoke_client(db_session, revoked.client_id, utcnow())
    db_session.commit()

    wrong_secret = request_token(client, api.client_id, "not-the-secret")
    unknown = request_token(client, "vrm_nobody", api.secret)
    gone = request_token(client, revoked.client_id, revoked.secret)

    assert wrong_secret.status_code == 401
    assert wrong_secret.json["error"] == "invalid_client"
    assert _answer(unknown) == _answer(wrong_secret)
    assert _answer(gone) == _answer(wrong_secret)


def test_an_unknown_client_costs_the_same_work_as_a_wrong_secret(
    app, brand_api, client, connection, monkeypatch
):
    api = brand_api()
    hashed: list[str] = []
    real_hash = oauth.hash_secret
    monkeypatch.setattr(oauth, "hash_secret", lambda s: hashed.append(s) or real_hash(s))
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(re.sub(r"sa_savepoint_\d+", "sa_savepoint_N", statement))

    def work(client_id: str, secret: str) -> tuple[list[str], list[str]]:
        hashed.clear()
        statements.clear()
        event.listen(connection, "before_cursor_execute", record)
        try:
            assert request_token(client, client_id, secret).status_code == 401
        finally:
            event.remove(connection, "before_cursor_execute", record)
        return list(hashed), list(statements)

    work(api.client_id, "warm-up")
    wrong_secret = work(api.client_id, "not-the-secret")
    unknown = work("vrm_nobody", "not-the-secret")
    assert wrong_secret[0] == unknown[0] == ["not-the-secret"]  # the secret is hashed
    assert wrong_secret[1] == unknown[1]  # and the same queries run


def test_unreadable_basic_credentials_get_the_same_answer_not_a_crash(brand_api, client):
    api = brand_api()
    wrong_secret = request_token(client, api.client_id, "not-the-secret")

    def basic(raw: bytes):
        header = "Basic " + base64.b64encode(raw).decode()
        return client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": header},
        )

    for raw in (b"\xff\xfe:secret", b"vrm_\x00nobody:secret", b"vrm_nobody%00:secret", b""):
        assert _answer(basic(raw)) == _answer(wrong_secret), raw
