"""The one-consumer read costs two statements (the token, then the consumer), with no
cache in between: a withdrawal or a revoked client is seen by the very next read."""

from __future__ import annotations

from tests.consent.test_write_cost import statements
from vrm_portal.brands import clients
from vrm_portal.clock import utcnow


def test_one_consumer_is_read_in_two_statements_and_never_stale(
    brand_api, make_account, consents, pairwise, connection, db_session
):
    alice = make_account("alice@example.com")
    consents(alice, "aurore-automobiles", grant=("analytics", "personalised-offers", "sms-offers"))
    api = brand_api()
    path = f"/api/v1/consumers/{pairwise(alice, 'aurore-automobiles')}"
    with statements(connection) as seen:
        first = api.get(path)
    assert first.status_code == 200
    reads = [s for s in seen if not s.startswith("INSERT INTO access_records")]
    assert len(reads) == 2, "\n".join(reads)
    assert [c["purpose"] for c in first.json["consents"]] == [
        "sms-offers",
        "personalised-offers",
        "analytics",
    ]
    assert set(first.json["profile"]) == {"given_name", "family_name", "language", "phone"}
    assert first.json["interests"] == []
    assert first.json["intents"] == []

    consents(alice, "aurore-automobiles", withdraw=("sms-offers", "personalised-offers"))
    after = api.get(path).json
    assert [c["purpose"] for c in after["consents"]] == ["analytics"]
    assert after["profile"] == {}
    assert "interests" not in after
    assert "intents" not in after

    clients.revoke_client(db_session, api.client_id, utcnow())
    db_session.commit()
    assert api.get(path).status_code == 401
