"""Operators manage brands' API clients from the command line (the contract in issue 5)."""

from __future__ import annotations

import json

from tests.api.conftest import request_token


def run(app, *args):
    return app.test_cli_runner().invoke(args=["vrm", *args])


def test_list_brands_as_json(app, connection, catalogue):
    result = run(app, "list-brands", "--json")
    assert result.exit_code == 0, result.output
    brands = json.loads(result.output)
    assert {"slug": "aurore-automobiles", "name": "Aurore Automobiles"} in brands
    assert len(brands) == 3


def test_create_client_prints_the_secret_once_and_it_works(app, connection, catalogue, client):
    result = run(
        app,
        "create-client",
        "--brand",
        "aurore-automobiles",
        "--scopes",
        "consumers:read changes:read",
        "--json",
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert set(created) >= {"client_id", "client_secret"}
    token = request_token(client, created["client_id"], created["client_secret"])
    assert token.status_code == 200
    assert token.json["scope"] == "consumers:read changes:read"

    listing = json.loads(run(app, "list-clients", "--json").output)
    assert [row["client_id"] for row in listing] == [created["client_id"]]
    assert listing[0]["last_used_at"] is not None  # the token request just now
    assert created["client_secret"] not in run(app, "list-clients").output


def test_revoke_client(app, connection, catalogue, client):
    created = json.loads(
        run(
            app,
            "create-client",
            "--brand",
            "maison-berlingot",
            "--scopes",
            "changes:read",
            "--json",
        ).output
    )
    token = request_token(client, created["client_id"], created["client_secret"]).json
    assert run(app, "revoke-client", created["client_id"]).exit_code == 0
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/api/v1/changes", headers=headers).status_code == 401
    listing = json.loads(run(app, "list-clients", "--json").output)
    assert listing[0]["revoked_at"] is not None


def test_bad_input_is_explained_without_a_traceback(app, connection, catalogue):
    unknown_brand = run(app, "create-client", "--brand", "nope", "--scopes", "changes:read")
    assert unknown_brand.exit_code == 2
    assert "no brand 'nope'" in unknown_brand.output
    assert "aurore-automobiles" in unknown_brand.output
    bad_scope = run(
        app, "create-client", "--brand", "aurore-automobiles", "--scopes", "consumers:write"
    )
    assert bad_scope.exit_code == 2
    assert "unknown scope consumers:write" in bad_scope.output
    empty = run(app, "create-client", "--brand", "aurore-automobiles", "--scopes", " ")
    assert empty.exit_code == 2
    unknown_client = run(app, "revoke-client", "vrm_nobody")
    assert unknown_client.exit_code == 2
    assert "no API client" in unknown_client.output
    assert json.loads(run(app, "list-clients", "--json").output) == []
