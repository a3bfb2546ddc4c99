"""Schemathesis against the brand API, in process: generated and mutated requests (with a
real token carrying every scope) must get documented answers, and never a 500.

Each operation runs twice, with valid (positive) and invalid (negative) inputs, from
Schemathesis' Hypothesis strategies (its pytest plugin does not run on our pytest). The
cases are derived deterministically, so a run is reproducible; set
``VRM_SCHEMATHESIS_SEED`` to explore other inputs.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.serving import make_server

from tests.api.conftest import request_token
from tests.api.test_openapi import seed_consumers
from vrm_portal.api.openapi import INTERACTION_EXAMPLE, build_document
from vrm_portal.extensions import limiter

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
#: Cases per operation and mode.
MAX_EXAMPLES = int(os.environ.get("VRM_SCHEMATHESIS_EXAMPLES", "60"))
SEED = os.environ.get("VRM_SCHEMATHESIS_SEED")
#: (method, path, mode): negative cases only where there is an input to get wrong.
CASES = [
    pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode.value}")
    for path, item in build_document("", 3600)["paths"].items()
    for method, operation in item.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or "parameters" in operation or "requestBody" in operation
]


class Caller:
    """The brand's credentials and the pairwise ids of its seeded consumers."""

    def __init__(self, api: Any, consumer_ids: list[str]) -> None:
        self.api = api
        self.consumer_ids = consumer_ids

    def headers(self, case: schemathesis.Case) -> dict[str, str]:
        if case.path == "/oauth/token":
            raw = f"{self.api.client_id}:{self.api.secret}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {"Authorization": f"Bearer {self.api.token}"}


@pytest.fixture
def caller(
    app, client, brand_api, make_account, db_session, consents, pairwise
) -> Iterator[Caller]:
    accounts = seed_consumers(make_account, db_session, consents)
    ids = [pairwise(account, "aurore-automobiles") for account in accounts]
    saved = app.extensions["vrm_api_limits"]
    app.extensions["vrm_api_limits"] = []
    try:
        yield Caller(brand_api(), ids)
    finally:
        app.extensions["vrm_api_limits"] = saved


@pytest.fixture
def api_schema(app, caller) -> Any:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # The test sends real credentials; Schemathesis is not to make up Authorization headers.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def _strategy(operation: Any, mode: GenerationMode, consumer_ids: list[str]) -> Any:
    """Cases for ``operation``; valid ones often aim at a consumer that exists."""
    generated = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.NEGATIVE or "{consumer_id}" not in operation.path:
        return generated
    known = [
        operation.as_strategy(generation_mode=mode, path_parameters={"consumer_id": id_})
        for id_ in consumer_ids
    ]
    return st.one_of(generated, *known)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_the_api_answers_as_documented(app, api_schema, caller, method, path, mode):
    operation = api_schema[path][method]

    @given(case=_strategy(operation, mode, caller.consumer_ids))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=SEED is None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        if path == "/oauth/token":
            with app.app_context():
                limiter.reset()  # its own 60-a-minute limit is not what this test is about
        case.call_and_validate(headers=caller.headers(case), checks=CHECKS)

    if SEED is not None:
        run = seed(int(SEED))(run)
    run()


def test_known_consumers_answer_as_documented(api_schema, caller):
    consumer_id = caller.consumer_ids[0]
    cases = [
        api_schema["/api/v1/consumers"]["GET"].Case(query={"limit": 1}),
        api_schema["/api/v1/consumers/{consumer_id}"]["GET"].Case(
            path_parameters={"consumer_id": consumer_id}
        ),
        api_schema["/api/v1/changes"]["GET"].Case(query={"after": "0", "limit": 1000}),
        api_schema["/api/v1/consumers/{consumer_id}/interactions"]["POST"].Case(
            path_parameters={"consumer_id": consumer_id},
            headers={"Idempotency-Key": "INV-2026-0042"},
            body=INTERACTION_EXAMPLE,
            media_type="application/json",
        ),
    ]
    replay = cases[-1]
    for case in [*cases, replay]:
        response = case.call_and_validate(headers=caller.headers(case), checks=CHECKS)
        assert response.status_code in (200, 201), response.text
    assert response.headers["idempotent-replayed"] == ["true"]


def test_an_interaction_from_year_1_is_refused_not_a_crash(caller):
    """Found by Schemathesis: such a time cannot be put in UTC (it was a 500)."""
    body = {"type": "purchase", "occurred_at": "0001-01-01T00:00:00+01:00", "summary": "Old"}
    path = f"/api/v1/consumers/{caller.consumer_ids[0]}/interactions"
    response = caller.api.post(path, json=body)
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "occurred_at"


def test_a_cursor_beyond_any_consumer_is_refused_not_a_crash(caller):
    """Found by Schemathesis on PostgreSQL: the id column is 32-bit (it was a 500)."""
    response = caller.api.get("/api/v1/consumers?cursor=79588070076")
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "cursor"
    assert caller.api.get(f"/api/v1/consumers?cursor={2**31 - 1}").json["items"] == []


def test_a_blank_scope_gets_all_the_clients_scopes(caller, client):
    """Found by Schemathesis: ``scope=%20`` (or a tab) answered 500."""
    response = request_token(client, caller.api.client_id, caller.api.secret, scope=" ")
    assert response.status_code == 200
    assert response.json["scope"] == "consumers:read changes:read interactions:write"


# ---- Schemathesis' own runner: every phase, boundary values included ------------------
#: The schema-conformance checks, both ways: what the document allows is accepted
#: (positive_data_acceptance) and what it refuses is refused (negative_data_rejection).
CLI_CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "unsupported_method",
        "allow_header_conformance",
    ]
)


@pytest.fixture
def live_api(app, caller) -> Iterator[str]:
    """The test app (in the test's rolled-back transaction) on a local port, one request at
    a time, with no rate limit (the token endpoint's 60 a minute is not under test)."""
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    was_enabled = limiter.enabled
    limiter.enabled = False
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        limiter.enabled = was_enabled


def _schemathesis_cli(url: str, *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{url}/api/v1/openapi.json",
        "--phases=examples,coverage,fuzzing",
        "--mode=all",
        f"--checks={CLI_CHECKS}",
        f"--max-examples={MAX_EXAMPLES}",
        "--workers=1",
        "--generation-deterministic",
        "--generation-with-security-parameters=false",
        "--suppress-health-check=all",
        "--no-color",
        *options,
    ]
    if SEED is not None:
        command.append(f"--seed={SEED}")
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    return subprocess.run(
        command, capture_output=True, text=True, timeout=900, check=False, env=env
    )


def test_schemathesis_cli_finds_nothing(live_api, caller):
    """Examples, coverage (boundary values, both ways) and fuzzing, positive and negative,
    through Schemathesis' runner; the token endpoint with Basic credentials, the API with
    the bearer token."""
    bearer = _schemathesis_cli(
        live_api,
        "--include-path-regex=^/api/v1/",
        f"--header=Authorization: Bearer {caller.api.token}",
    )
    assert bearer.returncode == 0, bearer.stdout[-20000:] + bearer.stderr[-5000:]
    basic = _schemathesis_cli(
        live_api,
        "--include-path=/oauth/token",
        f"--auth={caller.api.client_id}:{caller.api.secret}",
    )
    assert basic.returncode == 0, basic.stdout[-20000:] + basic.stderr[-5000:]
