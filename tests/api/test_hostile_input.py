"""Hostile interaction bodies get a problem document, never a 500, and store nothing.

Findings of the outside security test ("Account security", Low): a deeply nested body,
an integer beyond 64 bits, NaN / Infinity / 1e400 and control characters in ``details``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from vrm_portal.api.openapi import build_document
from vrm_portal.history.models import Interaction

BODY = (
    '{"type": "purchase", "occurred_at": "2026-11-20T10:30:00+01:00", '
    '"summary": "Bought winter tyres", "details": %s}'
)


@pytest.fixture
def post(brand_api, make_account, consents, pairwise):
    """Post a raw JSON text as Aurore's CRM would, to Alice's interactions."""
    alice = make_account("alice@example.com")
    consents(alice, "aurore-automobiles", grant=("analytics",))
    api = brand_api()
    path = f"/api/v1/consumers/{pairwise(alice, 'aurore-automobiles')}/interactions"

    def send(text: str | bytes):
        return api.http.post(
            path, data=text, headers=api.headers(**{"Content-Type": "application/json"})
        )

    return send


def _count(db_session) -> int:
    return db_session.scalar(select(func.count()).select_from(Interaction))


def _fields(response) -> list[str]:
    return [error["field"] for error in response.json.get("errors", [])]


def test_a_deeply_nested_body_is_invalid_json_not_a_crash(post, db_session):
    for text in ("[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        response = post(text)
        assert response.status_code == 400, response.status_code
        assert response.mimetype == "application/problem+json"
        assert response.json["type"].endswith("#problem-invalid-json")
        assert "nested" in response.json["detail"]
    nested_details = post(BODY % ('{"a": ' + "[" * 5000 + "]" * 5000 + "}"))
    assert nested_details.status_code == 400
    assert _count(db_session) == 0


def test_a_body_nested_a_little_deeper_than_any_valid_one_is_read_normally(post):
    response = post(BODY % ('{"a": ' + "[" * 10 + "]" * 10 + "}"))
    assert response.status_code == 422
    assert _fields(response) == ["details.a"]


@pytest.mark.parametrize("number", ["18446744073709551616", "-9223372036854775809", "1" + "0" * 40])
def test_an_integer_beyond_64_bits_in_details_is_refused_naming_the_field(post, db_session, number):
    response = post(BODY % f'{{"store": "Lyon", "count": {number}}}')
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert _fields(response) == ["details.count"]
    assert _count(db_session) == 0


def test_64_bit_integers_are_still_accepted(post, db_session):
    response = post(BODY % '{"low": -9223372036854775808, "high": 9223372036854775807}')
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["details"] == {"low": -(2**63), "high": 2**63 - 1}


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E+999"])
def test_non_finite_numbers_in_details_are_refused_naming_the_field(post, db_session, value):
    response = post(BODY % f'{{"ratio": {value}}}')
    assert response.status_code == 422, response.get_data(as_text=True)
    assert _fields(response) == ["details.ratio"]
    assert _count(db_session) == 0


def test_nan_anywhere_in_the_body_is_refused_naming_the_field(post, db_session):
    response = post(
        '{"type": "purchase", "occurred_at": "2026-11-20T10:30:00+01:00", '
        '"summary": NaN, "amount": {"value": Infinity, "currency": "EUR"}}'
    )
    assert response.status_code == 422
    assert sorted(_fields(response)) == ["amount.value", "summary"]
    assert post("NaN").status_code == 422
    assert _count(db_session) == 0


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ('{"store\\u0000": "Lyon"}', "details.store\x00.[key]"),
        ('{"\\u001b[31mred": "Lyon"}', "details.\x1b[31mred.[key]"),
        ('{"store": "Lyon\\u0000Est"}', "details.store"),
        ('{"store": "\\u001b[2J"}', "details.store"),
        ('{"store": "Lyon\\u007f"}', "details.store"),
        ('{"store": "Lyon\\u009b"}', "details.store"),
    ],
)
def test_control_characters_in_detail_keys_and_values_are_refused(post, db_session, details, field):
    response = post(BODY % details)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert _fields(response) == [field]
    assert _count(db_session) == 0


def test_ordinary_details_with_line_breaks_and_accents_still_pass(post):
    response = post(BODY % '{"note": "Révision\\nfaite", "items": 4, "ok": true, "x": 1.5}')
    assert response.status_code == 201, response.get_data(as_text=True)


def test_the_openapi_document_declares_the_refusals():
    schema = build_document("", 3600)["components"]["schemas"]["InteractionIn"]
    details = schema["properties"]["details"]
    assert "pattern" in details["propertyNames"]
    kinds = {member.get("type"): member for member in details["additionalProperties"]["anyOf"]}
    assert "pattern" in kinds["string"]
    assert kinds["integer"]["minimum"] == -(2**63)
    assert kinds["integer"]["maximum"] == 2**63 - 1
