"""The OpenAPI document: valid 3.1, complete, generated from the models the code uses, and
true to what the API really answers; and the docs page that renders it."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from vrm_portal.api import openapi
from vrm_portal.api.schemas import InteractionIn
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.interests import service as interests

API = Path(__file__).resolve().parents[2] / "vrm_portal" / "api"
DOC_URI = "urn:vrm-portal:openapi"


def seed_consumers(make_account, db_session, consents, count: int = 3) -> list[Any]:
    """``count`` consumers of Aurore Automobiles; the first shares everything it may."""
    brand = brand_by_slug(db_session, "aurore-automobiles")
    accounts = []
    for n in range(count):
        account = make_account(f"consumer{n}@example.com")
        account.given_name, account.family_name, account.locale = "Alice", f"Martin{n}", "fr"
        account.phone = "+33612345678"
        db_session.commit()
        consents(account, "aurore-automobiles", grant=("analytics", "sms-offers"))
        accounts.append(account)
    first = accounts[0]
    consents(first, "aurore-automobiles", grant=("email-offers", "personalised-offers"))
    interests.set_interests(db_session, first, brand, {"electric-vehicles"})
    interests.state_intent(
        db_session,
        first,
        interests.IntentInput(
            category="replace-vehicle",
            summary="Replace my car",
            horizon_months=6,
            budget_min=20000,
            budget_max=None,
            brand_slugs=frozenset({"aurore-automobiles"}),
        ),
        utcnow().date(),
    )
    db_session.commit()
    return accounts


def _document(client) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def assert_documented(document: dict[str, Any], path: str, method: str, response) -> None:
    """``response`` has a documented status, content type, headers and body shape."""
    documented = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in documented, f"{method.upper()} {path}: undocumented {status}"
    spec = documented[status]
    assert response.mimetype in spec["content"], (status, response.mimetype)
    for name, header in spec.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers, f"{status} without {name}"
    schema = spec["content"][response.mimetype]["schema"]
    registry = Registry().with_resource(
        DOC_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    if "$ref" in schema:
        schema = {"$ref": DOC_URI + schema["$ref"]}
    validator = Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(response.json)]
    assert not errors, errors


def test_the_document_is_valid_openapi_3_1_and_public(client):
    document = _document(client)
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["version"] == "1.0.0"
    flows = document["components"]["securitySchemes"]["brandOAuth"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert set(flows["clientCredentials"]["scopes"]) == {
        "consumers:read",
        "changes:read",
        "interactions:write",
    }


def test_the_document_is_built_once_per_app(app):
    assert openapi.document(app) is openapi.document(app)


def test_every_api_route_is_documented_and_nothing_more(app, client):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("api.", "log.")) or rule.endpoint == "oauth.token":
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            routes |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {
        (method, path) for path, item in _document(client)["paths"].items() for method in item
    }
    assert routes == documented
    assert ("get", "/api/v1/consumers/{consumer_id}") in routes
    assert ("get", "/log/proof/inclusion") in routes


def test_each_operation_states_its_scope(client):
    document = _document(client)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/api/v1/") and "docs" not in path and "openapi" not in path:
                (requirement,) = operation["security"]
                assert requirement == {"brandOAuth": [operation["x-scope"]]}, (method, path)
                assert {"401", "403", "429"} <= set(operation["responses"])


def test_the_request_schema_is_the_one_the_code_validates_with(client):
    components = _document(client)["components"]["schemas"]
    own = json.loads(
        json.dumps(InteractionIn.model_json_schema()).replace('"#/$defs/', '"#/components/schemas/')
    )
    definitions = own.pop("$defs")
    assert components["InteractionIn"] == own
    for name, definition in definitions.items():
        assert components[name] == definition


def test_every_problem_type_the_code_raises_is_documented():
    source = "\n".join((API / name).read_text() for name in ("views.py", "oauth.py", "problems.py"))
    source += (API.parent / "log" / "views.py").read_text()
    raised = set(re.findall(r'(?:ApiProblem\(|^\s+)\s*\d{3},\s*"([a-z-]+)",', source, re.M))
    documented = {problem.slug for problem in openapi.PROBLEM_TYPES}
    assert raised
    assert raised <= documented, raised - documented
    assert documented == {
        "no-checkpoint",
        "invalid-parameter",
        "not-found",
        "unauthorized",
        "insufficient-scope",
        "rate-limited",
        "validation-failed",
        "invalid-json",
        "unsupported-media-type",
        "invalid-idempotency-key",
        "idempotency-key-reused",
    }


def test_real_responses_match_the_documented_schemas(
    client, brand_api, make_account, db_session, consents, pairwise
):
    document = _document(client)
    accounts = seed_consumers(make_account, db_session, consents)
    api = brand_api()
    consumer_id = pairwise(accounts[0], "aurore-automobiles")

    page = api.get("/api/v1/consumers?limit=2")
    assert page.json["items"][0]["interests"] == ["electric-vehicles"]
    assert page.json["items"][0]["intents"][0]["budget"]["max"] is None
    assert_documented(document, "/api/v1/consumers", "get", page)
    last = api.get(f"/api/v1/consumers?cursor={page.json['next_cursor']}")
    assert last.json["next_cursor"] is None
    assert_documented(document, "/api/v1/consumers", "get", last)

    one = api.get(f"/api/v1/consumers/{consumer_id}")
    assert one.json["profile"]["email"] == "consumer0@example.com"
    assert_documented(document, "/api/v1/consumers/{consumer_id}", "get", one)

    changes = api.get("/api/v1/changes?after=0&limit=50")
    assert {item["type"] for item in changes.json["items"]} >= {
        "consent.granted",
        "interests.changed",
    }
    assert_documented(document, "/api/v1/changes", "get", changes)

    path = f"/api/v1/consumers/{consumer_id}/interactions"
    recorded = api.post(path, json=openapi.INTERACTION_EXAMPLE, headers={"Idempotency-Key": "k1"})
    assert recorded.status_code == 201
    assert_documented(document, "/api/v1/consumers/{consumer_id}/interactions", "post", recorded)
    minimal = {"type": "test-drive", "occurred_at": "2026-01-02T03:04:05Z", "summary": "Drove"}
    bare = api.post(path, json=minimal)
    assert bare.json["amount"] is None
    assert_documented(document, "/api/v1/consumers/{consumer_id}/interactions", "post", bare)

    missing = api.get("/api/v1/consumers/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert missing.json["type"] == "/api/v1/docs#problem-not-found"
    assert_documented(document, "/api/v1/consumers/{consumer_id}", "get", missing)
    invalid = api.post(path, json={"type": "purchase"})
    assert invalid.status_code == 422
    assert_documented(document, "/api/v1/consumers/{consumer_id}/interactions", "post", invalid)
    anonymous = client.get("/api/v1/changes")
    assert_documented(document, "/api/v1/changes", "get", anonymous)

    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(api.client_id, api.secret),
    )
    assert_documented(document, "/oauth/token", "post", token)
    refused = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(api.client_id, "no")
    )
    assert refused.status_code == 401
    assert_documented(document, "/oauth/token", "post", refused)


class _Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[int] = []
        self.ids: set[str] = set()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _value in attrs)
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        self.ids.update(value for name, value in attrs if name == "id" and value)


def test_the_docs_page_lists_every_operation_and_problem_type(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    outline = _Outline()
    outline.feed(html)
    assert outline.headings.count(1) == 1
    assert outline.headings[0] == 1
    assert all(b <= a + 1 for a, b in zip(outline.headings, outline.headings[1:], strict=False))
    for path in _document(client)["paths"]:
        assert f"<code>GET {path}</code>" in html or f"<code>POST {path}</code>" in html, path
    for problem in openapi.PROBLEM_TYPES:
        assert f"problem-{problem.slug}" in outline.ids
    assert "flask --app wsgi vrm create-client --brand SLUG" in html
    # No script of its own: only base.html's time zone detection, from a file (CSP).
    assert re.findall(r'<script src="([^"]+)"', html) == ["/static/time-zone.js"]
    assert html.count("<script") == 1
    assert "style" not in outline.attributes
    assert "Content-Security-Policy" in response.headers


def test_a_problem_type_links_to_its_explanation(client):
    response = client.get("/api/v1/changes")
    anchor = response.json["type"].split("#", 1)[1]
    page = client.get(response.json["type"].split("#", 1)[0]).get_data(as_text=True)
    assert f'id="{anchor}"' in page
