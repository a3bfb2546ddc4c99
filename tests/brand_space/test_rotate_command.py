"""``vrm rotate-client``: the command-line twin of the brand space's "Rotate the secret"."""

from __future__ import annotations

import json

from tests.api.conftest import request_token
from vrm_portal.brands import clients
from vrm_portal.clock import utcnow


def run(app, *args):
    return app.test_cli_runner().invoke(args=["vrm", *args])


def test_rotate_client_prints_the_new_secret_and_both_work(app, client, db_session, brand):
    created = clients.create_client(db_session, brand, ["changes:read"], utcnow(), "CRM")
    db_session.commit()
    client_id, old = created.client.client_id, created.secret
    result = run(app, "rotate-client", client_id, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["client_id"] == client_id
    assert document["old_secret_until"] is not None
    new = document["client_secret"]
    assert request_token(client, client_id, old).status_code == 200
    assert request_token(client, client_id, new).status_code == 200
    # With no grace, the previous secret (the first rotation's new one) stops at once.
    again = run(app, "rotate-client", client_id, "--grace-hours", "0")
    assert again.exit_code == 0, again.output
    assert "The old secret stopped." in again.output
    assert request_token(client, client_id, new).status_code == 401
    assert request_token(client, client_id, old).status_code == 401


def test_rotate_client_refuses_unknown_and_revoked_clients(app, db_session, brand):
    assert "no API client 'vrm_nobody'" in run(app, "rotate-client", "vrm_nobody").output
    created = clients.create_client(db_session, brand, ["changes:read"], utcnow(), "CRM")
    clients.revoke_client(db_session, created.client.client_id, utcnow())
    db_session.commit()
    refused = run(app, "rotate-client", created.client.client_id)
    assert refused.exit_code != 0
    assert "is revoked" in refused.output
    assert run(app, "rotate-client", created.client.client_id, "--grace-hours", "999").exit_code
