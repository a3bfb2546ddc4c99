"""OAuth2 client credentials: tokens, scopes per route, revocation, errors, rate limits."""

from __future__ import annotations

from datetime import timedelta

from limits import parse_many
from sqlalchemy import select

from tests.api.conftest import basic, request_token
from vrm_portal.accounts.tokens import hash_secret
from vrm_portal.brands import clients
from vrm_portal.brands.models import ApiClient, ApiToken
from vrm_portal.clock import utcnow


def test_a_token_for_the_clients_scopes(brand_api, client, db_session):
    api = brand_api(scopes="consumers:read changes:read")
    response = request_token(client, api.client_id, api.secret)
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "consumers:read changes:read"
    assert 0 < body["expires_in"] <= 3600
    assert len(body["access_token"]) >= 43  # 256 bits, base64url
    assert response.headers["Cache-Control"] == "no-store"
    stored = db_session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_secret(body["access_token"]))
    )
    assert stored is not None
    assert body["access_token"] not in (stored.token_hash, stored.scope)
    narrowed = request_token(client, api.client_id, api.secret, scope="changes:read")
    assert narrowed.json["scope"] == "changes:read"


def test_secrets_are_stored_hashed(brand_api, db_session):
    api = brand_api()
    row = db_session.scalar(select(ApiClient).where(ApiClient.client_id == api.client_id))
    assert row.secret_hash == hash_secret(api.secret)
    assert api.secret not in row.secret_hash


def test_wrong_secret_unknown_client_and_bad_scope_are_refused(brand_api, client):
    api = brand_api(scopes="consumers:read")
    wrong = request_token(client, api.client_id, "not-the-secret")
    assert wrong.status_code == 401
    assert wrong.json["error"] == "invalid_client"
    unknown = request_token(client, "vrm_nobody", api.secret)
    assert unknown.status_code == 401
    assert unknown.json["error"] == "invalid_client"
    not_allowed = request_token(client, api.client_id, api.secret, scope="changes:read")
    assert not_allowed.status_code == 400
    assert not_allowed.json["error"] == "invalid_scope"
    made_up = request_token(client, api.client_id, api.secret, scope="admin")
    assert made_up.json["error"] == "invalid_scope"
    in_body = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": api.client_id,
            "client_secret": api.secret,
        },
    )
    assert in_body.status_code == 401  # only HTTP Basic (DESIGN §4)
    other_grant = client.post(
        "/oauth/token", data={"grant_type": "password"}, headers=basic(api.client_id, api.secret)
    )
    assert other_grant.json["error"] == "unsupported_grant_type"


def test_routes_need_a_valid_token_with_their_scope(brand_api, client):
    missing = client.get("/api/v1/consumers")
    assert missing.status_code == 401
    assert missing.mimetype == "application/problem+json"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    bogus = client.get("/api/v1/consumers", headers={"Authorization": "Bearer nope"})
    assert bogus.status_code == 401
    api = brand_api(scopes="changes:read")
    forbidden = api.get("/api/v1/consumers")
    assert forbidden.status_code == 403
    assert "consumers:read" in forbidden.json["detail"]
    assert 'error="insufficient_scope"' in forbidden.headers["WWW-Authenticate"]
    assert api.get("/api/v1/changes").status_code == 200
    write = api.post("/api/v1/consumers/00000000-0000-4000-8000-000000000000/interactions", json={})
    assert write.status_code == 403


def test_revoking_a_client_stops_its_tokens_at_once(brand_api, db_session):
    api = brand_api()
    assert api.get("/api/v1/consumers").status_code == 200
    clients.revoke_client(db_session, api.client_id, utcnow())
    db_session.commit()
    assert api.get("/api/v1/consumers").status_code == 401
    again = request_token(api.http, api.client_id, api.secret)
    assert again.status_code == 401


def test_an_expired_token_is_refused(brand_api, db_session):
    api = brand_api()
    token = db_session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(api.token)))
    token.expires_at = utcnow() - timedelta(seconds=1)
    db_session.commit()
    response = api.get("/api/v1/consumers")
    assert response.status_code == 401
    assert "expired" in response.json["detail"]


def test_each_client_has_its_own_rate_limit(app, brand_api):
    first, second = brand_api(), brand_api()
    saved = app.extensions["vrm_api_limits"]
    app.extensions["vrm_api_limits"] = parse_many("3 per minute")
    try:
        statuses = [first.get("/api/v1/changes").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = first.get("/api/v1/changes")
        assert limited.mimetype == "application/problem+json"
        assert 1 <= int(limited.headers["Retry-After"]) <= 61
        assert second.get("/api/v1/changes").status_code == 200
    finally:
        app.extensions["vrm_api_limits"] = saved
