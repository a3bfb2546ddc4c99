"""The brand API routes (``/api/v1``): parse, call a service, answer JSON.

Every route needs a bearer token with its scope (``oauth.require``). A consumer the
brand does not know, another brand's consumer and an erased one get the same 404.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from vrm_portal.api import one_consumer, projection
from vrm_portal.api.json_body import InvalidJson, read_json
from vrm_portal.api.oauth import current_caller, require
from vrm_portal.api.problems import ApiProblem, invalid_parameter, not_found
from vrm_portal.api.schemas import InteractionIn
from vrm_portal.clock import api_time, utcnow
from vrm_portal.extensions import csrf, db, limiter
from vrm_portal.history import service as history
from vrm_portal.history.models import AccessKind, Interaction
from vrm_portal.history.recorder import AccessRecorder, access_row

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
limiter.exempt(bp)

DEFAULT_LIMIT = 100
#: How far ahead of our clock a brand's ``occurred_at`` may be (their clocks drift).
CLOCK_SKEW = timedelta(minutes=5)
#: Older times are typing errors (and year 1 with an offset cannot even be put in UTC).
EARLIEST_OCCURRED_AT = datetime(1900, 1, 1, tzinfo=UTC)
MAX_LIMIT = 1000
#: A consumers cursor is a relationship id: a 32-bit integer column on PostgreSQL.
MAX_CONSUMER_CURSOR = 2**31 - 1
#: The largest feed position ``after`` takes: every 18-digit number (its pattern's limit).
MAX_AFTER = 10**18 - 1
_DIGITS = re.compile(r"[0-9]{1,18}")
#: 0 to MAX_CONSUMER_CURSOR exactly, so that the OpenAPI pattern says what is accepted.
_CONSUMER_CURSOR = re.compile(
    r"[0-9]{1,9}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
    r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]"
    r"|214748364[0-7]"
)
_PAIRWISE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@bp.errorhandler(ApiProblem)
def _problem(problem: ApiProblem) -> ResponseReturnValue:
    return problem.response()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(orjson.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    if headers:
        response.headers.update(headers)
    return response


def _record_read(
    kind: AccessKind, scope: str, first_id: int, last_id: int, count: int, fields: Any
) -> None:
    """Record the caller's read for the consumers' transparency (see ``history.recorder``)."""
    caller = current_caller()
    row = access_row(
        brand_id=caller.brand_id,
        client_pk=caller.client_pk,
        kind=kind,
        scope=scope,
        first_id=first_id,
        last_id=last_id,
        count=count,
        fields=fields,
        now=utcnow(),
    )
    recorder: AccessRecorder | None = current_app.extensions.get("vrm_access_recorder")
    if recorder is None:
        history.record_access(db.session, row)
    else:
        recorder.add(row)


def _int_param(
    name: str, default: int, *, low: int, high: int, pattern: re.Pattern[str] = _DIGITS
) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not pattern.fullmatch(raw) or not low <= int(raw) <= high:
        raise invalid_parameter(name, f"'{name}' must be a whole number from {low} to {high}.")
    return int(raw)


def _pairwise(consumer_id: str) -> str:
    if not _PAIRWISE.fullmatch(consumer_id):
        raise not_found()
    return consumer_id


@bp.get("/consumers")
@require("consumers:read")
def consumers() -> ResponseReturnValue:
    """The brand's consumers, ``limit`` at a time, in a stable order (keyset cursor)."""
    limit = _int_param("limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    after = _int_param("cursor", 0, low=0, high=MAX_CONSUMER_CURSOR, pattern=_CONSUMER_CURSOR)
    caller, now = current_caller(), utcnow()
    page = projection.consumers_page(db.session, caller.brand_id, after, limit, now)
    if page.items:
        _record_read(
            kind=AccessKind.CONSUMERS,
            scope="consumers:read",
            first_id=page.first_id,
            last_id=page.last_id,
            count=len(page.items),
            fields=page.fields,
        )
    next_cursor = str(page.last_id) if len(page.items) == limit else None
    return _json({"items": page.items, "next_cursor": next_cursor})


@bp.get("/consumers/<consumer_id>")
@require("consumers:read")
def consumer(consumer_id: str) -> ResponseReturnValue:
    caller, now = current_caller(), utcnow()
    page = one_consumer.consumer(db.session, caller.brand_id, _pairwise(consumer_id), now)
    if not page.items:
        raise not_found()
    _record_read(
        kind=AccessKind.CONSUMER,
        scope="consumers:read",
        first_id=page.first_id,
        last_id=page.last_id,
        count=1,
        fields=page.fields,
    )
    return _json(page.items[0])


@bp.get("/changes")
@require("changes:read")
def changes() -> ResponseReturnValue:
    """The brand's change feed after ``after`` (0 = from the start), oldest first."""
    limit = _int_param("limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    after = _int_param("after", 0, low=0, high=MAX_AFTER)
    caller = current_caller()
    page = projection.changes_page(db.session, caller.brand_id, after, limit)
    if page.items:
        _record_read(
            kind=AccessKind.CHANGES,
            scope="changes:read",
            first_id=page.items[0]["seq"],
            last_id=page.next_cursor,
            count=len(page.items),
            fields=["consent"],
        )
    return _json({"items": page.items, "next_cursor": str(page.next_cursor)})


@bp.post("/consumers/<consumer_id>/interactions")
@require("interactions:write")
def record_interaction(consumer_id: str) -> ResponseReturnValue:
    """Record what the brand did with or for the consumer; shown in their history."""
    caller, now = current_caller(), utcnow()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiProblem(
            400,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
        )
    if not request.is_json:
        raise ApiProblem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the interaction as JSON with 'Content-Type: application/json'.",
        )
    try:
        raw = read_json(request.get_data(cache=False))
    except InvalidJson as error:
        raise ApiProblem(400, "invalid-json", "Invalid JSON", str(error)) from None
    try:
        data = InteractionIn.model_validate(raw)
    except ValidationError as error:
        raise ApiProblem(
            422,
            "validation-failed",
            "Validation failed",
            "The interaction does not match the schema; see 'errors'.",
            errors=[
                {
                    "location": "body",
                    "field": ".".join(str(part) for part in issue["loc"]) or "(body)",
                    "message": issue["msg"],
                }
                for issue in error.errors(include_url=False, include_input=False)
            ],
        ) from None
    if data.occurred_at > now + CLOCK_SKEW:
        raise ApiProblem(
            422,
            "validation-failed",
            "Validation failed",
            "The interaction cannot have happened in the future.",
            errors=[{"location": "body", "field": "occurred_at", "message": "is in the future"}],
        )
    if data.occurred_at < EARLIEST_OCCURRED_AT:
        raise ApiProblem(
            422,
            "validation-failed",
            "Validation failed",
            "The interaction cannot have happened before 1900.",
            errors=[{"location": "body", "field": "occurred_at", "message": "is before 1900"}],
        )
    found = projection.relationship_of(db.session, caller.brand_id, _pairwise(consumer_id))
    if found is None:
        raise not_found()
    _relationship_id, account_id = found
    body = data.model_dump(mode="json", exclude_none=True)
    try:
        recorded = history.record_interaction(
            db.session,
            account_id=account_id,
            brand_id=caller.brand_id,
            client_pk=caller.client_pk,
            body=body,
            occurred_at=data.occurred_at.astimezone(UTC),
            idempotency_key=key,
            now=now,
        )
    except history.IdempotencyConflict:
        raise ApiProblem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "This Idempotency-Key was already used for a different request; use a new key "
            "for a new interaction.",
        ) from None
    interaction = recorded.interaction
    headers = {"Location": _interaction_path(consumer_id, interaction.interaction_id)}
    if not recorded.created:
        headers["Idempotent-Replayed"] = "true"
    return _json(_interaction_document(consumer_id, interaction), 201, headers)


@bp.get("/consumers/<consumer_id>/interactions/<interaction_id>")
@require("interactions:write")
def interaction(consumer_id: str, interaction_id: str) -> ResponseReturnValue:
    """An interaction the brand recorded (where ``Location`` points after recording it)."""
    caller = current_caller()
    found = projection.relationship_of(db.session, caller.brand_id, _pairwise(consumer_id))
    if found is None or not _PAIRWISE.fullmatch(interaction_id):
        raise not_found()
    row = history.brand_interaction(db.session, caller.brand_id, found[1], interaction_id)
    if row is None:
        raise not_found("No interaction with this id was recorded by your brand for this consumer.")
    return _json(_interaction_document(consumer_id, row))


def _interaction_path(consumer_id: str, interaction_id: str) -> str:
    return f"{bp.url_prefix}/consumers/{consumer_id}/interactions/{interaction_id}"


def _interaction_document(consumer_id: str, interaction: Interaction) -> dict[str, Any]:
    return {
        "interaction_id": interaction.interaction_id,
        "consumer_id": consumer_id,
        "type": interaction.type,
        "occurred_at": api_time(interaction.occurred_at),
        "recorded_at": api_time(interaction.recorded_at),
        "summary": interaction.summary,
        "reference": interaction.body.get("reference"),
        "channel": interaction.body.get("channel"),
        "amount": interaction.body.get("amount"),
        "details": interaction.body.get("details", {}),
    }


# ---- The API's own documentation (public: no token) ---------------------------------
# ``openapi`` reads this module's patterns and limits, hence the imports in the functions.


@bp.get("/openapi.json")
def openapi_document() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of this API, generated from its schemas."""
    from vrm_portal.api import openapi

    return openapi.document_response()


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    """The API reference for brands' developers, rendered from the OpenAPI document."""
    from vrm_portal.api import docs_page

    return docs_page.render()
