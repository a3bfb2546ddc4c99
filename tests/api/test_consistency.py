"""The brand API to the letter: one time format, Location, Allow, and a document that
says exactly what the server accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.test_openapi import seed_consumers
from vrm_portal.api import views
from vrm_portal.api.openapi import INTERACTION_EXAMPLE
from vrm_portal.api.schemas import InteractionIn

#: The one form: UTC, microseconds, Z.
API_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def _date_time_paths(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(schema name, property) of every property documented as format date-time."""
    found = set()
    for name, schema in document["components"]["schemas"].items():
        for prop, spec in schema.get("properties", {}).items():
            options = [spec, *spec.get("anyOf", [])]
            if any(option.get("format") == "date-time" for option in options):
                found.add((name, prop))
    return found


def _times(value: Any, path: str = "") -> dict[str, Any]:
    """Every key ending in _at / known_since in a JSON value, by path."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_at") or key == "known_since":
                out[f"{path}.{key}"] = item
            out.update(_times(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.update(_times(item, f"{path}[{index}]"))
    return out


@pytest.fixture
def seeded(brand_api, make_account, db_session, consents, pairwise):
    accounts = seed_consumers(make_account, db_session, consents)
    api = brand_api()
    consents(accounts[1], "aurore-automobiles", withdraw=("sms-offers",))
    return api, pairwise(accounts[0], "aurore-automobiles")


def test_every_documented_time_field_has_one_form(client, seeded):
    api, consumer_id = seeded
    document = client.get("/api/v1/openapi.json").json
    documented = _date_time_paths(document)
    assert {
        ("ConsentOut", "granted_at"),
        ("ConsentOut", "expires_at"),
        ("ConsumerOut", "known_since"),
        ("ChangeOut", "occurred_at"),
        ("InteractionOut", "occurred_at"),
        ("InteractionOut", "recorded_at"),
    } <= documented
    recorded = api.post(f"/api/v1/consumers/{consumer_id}/interactions", json=INTERACTION_EXAMPLE)
    answers = {
        "consumers": api.get("/api/v1/consumers").json,
        "consumer": api.get(f"/api/v1/consumers/{consumer_id}").json,
        "changes": api.get("/api/v1/changes?limit=1000").json,
        "interaction": recorded.json,
        "read back": api.get(recorded.headers["Location"]).json,
    }
    seen = {}
    for name, body in answers.items():
        seen.update({f"{name}{path}": value for path, value in _times(body).items()})
    # The ones the document declares are there, and so is the feed's data.expires_at.
    assert any(".consents[0].expires_at" in path for path in seen)
    assert any(path.endswith(".data.expires_at") for path in seen)
    assert any(path.endswith(".recorded_at") for path in seen)
    wrong = {
        path: value
        for path, value in seen.items()
        if value is not None and not API_TIME.fullmatch(value)
    }
    assert not wrong
    # 10:30+01:00 is 09:30 UTC.
    assert answers["interaction"]["occurred_at"] == "2026-11-20T09:30:00.000000Z"


def test_a_recorded_interaction_has_a_location_that_answers_it(seeded, client):
    api, consumer_id = seeded
    path = f"/api/v1/consumers/{consumer_id}/interactions"
    first = api.post(path, json=INTERACTION_EXAMPLE, headers={"Idempotency-Key": "K-1"})
    assert first.status_code == 201
    location = first.headers["Location"]
    assert location == f"{path}/{first.json['interaction_id']}"
    replay = api.post(path, json=INTERACTION_EXAMPLE, headers={"Idempotency-Key": "K-1"})
    assert replay.headers["Location"] == location
    read = api.get(location)
    assert read.status_code == 200
    assert read.json == first.json
    # Another consumer's path, an unknown id, or no token: not this interaction.
    other = api.get(f"{path}/00000000-0000-4000-8000-000000000000")
    assert other.status_code == 404
    assert client.get(location).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/consumers", "GET, HEAD, OPTIONS"),
        ("POST", "/api/v1/changes", "GET, HEAD, OPTIONS"),
        ("PUT", "/api/v1/consumers/x", "GET, HEAD, OPTIONS"),
        ("GET", "/api/v1/consumers/x/interactions", "OPTIONS, POST"),
        ("TRACE", "/api/v1/consumers/x/interactions", "OPTIONS, POST"),
        ("PATCH", "/api/v1/openapi.json", "GET, HEAD, OPTIONS"),
        ("GET", "/oauth/token", "OPTIONS, POST"),
    ],
)
def test_405_names_the_allowed_methods(client, method, path, allow):
    response = client.open(
        path, method=method, json={"a": 1}, headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 405
    assert response.headers["Allow"] == allow


def test_the_cursor_pattern_is_the_cursor_range(seeded, client):
    api, _consumer_id = seeded
    document = client.get("/api/v1/openapi.json").json
    pattern = re.compile(document["components"]["parameters"]["cursor"]["schema"]["pattern"])
    for value in ["", "0", "007", "999999999", str(2**31 - 2), str(2**31 - 1)]:
        assert pattern.search(value), value
        assert api.get(f"/api/v1/consumers?cursor={value}").status_code == 200, value
    for value in [str(2**31), "2147483650", "9999999999", "0000000001", str(10**17), "-1"]:
        assert not pattern.search(value), value
        assert api.get(f"/api/v1/consumers?cursor={value}").status_code == 400, value


def test_after_takes_what_its_message_says(seeded):
    api, _consumer_id = seeded
    assert api.get(f"/api/v1/changes?after={10**18 - 1}").status_code == 200
    refused = api.get(f"/api/v1/changes?after={10**18}")
    assert refused.status_code == 400
    assert str(views.MAX_AFTER) in refused.json["detail"]


@pytest.mark.parametrize("field", ["summary", "reference", "channel"])
def test_control_characters_refused_are_declared(field, seeded):
    api, consumer_id = seeded
    schema = InteractionIn.model_json_schema()["properties"][field]
    options = [schema, *schema.get("anyOf", [])]
    pattern = next(option["pattern"] for option in options if "pattern" in option)
    assert not re.search(pattern, "a\x07b")
    assert re.search(pattern, "a\tb")
    body = {**INTERACTION_EXAMPLE, field: "a\x07b"}
    response = api.post(f"/api/v1/consumers/{consumer_id}/interactions", json=body)
    assert response.status_code == 422


@pytest.mark.parametrize("value", [0, 1700000000, "1700000000", "2026-11-20", True])
def test_occurred_at_is_rfc3339_text_only(value, seeded):
    api, consumer_id = seeded
    body = {**INTERACTION_EXAMPLE, "occurred_at": value}
    response = api.post(f"/api/v1/consumers/{consumer_id}/interactions", json=body)
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "occurred_at"


@pytest.mark.parametrize("value", ["0" * 201, "12", "true"])
def test_a_detail_text_is_not_read_as_a_number(value, seeded):
    api, consumer_id = seeded
    body = {**INTERACTION_EXAMPLE, "details": {"code": value}}
    response = api.post(f"/api/v1/consumers/{consumer_id}/interactions", json=body)
    if len(value) > 200:
        assert response.status_code == 422
    else:
        assert response.json["details"] == {"code": value}
