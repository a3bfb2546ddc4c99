"""The public log's endpoints: checkpoints, the verifier key, inclusion and consistency
proofs. Public, cacheable, rate-limited; errors are problem+json; no event body is ever
served, only hashes."""

from __future__ import annotations

import base64

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from vrm_portal.api.problems import ApiProblem, invalid_parameter
from vrm_portal.clock import rfc3339
from vrm_portal.db import READ_ONLY
from vrm_portal.extensions import db, limiter
from vrm_portal.log import service
from vrm_portal.log.signing import log_signer

bp = Blueprint("log", __name__, url_prefix="/log")

#: The largest number accepted for an index or a size.
MAX_NUMBER = 10**18
PAGE_SIZE = 100
#: A proof for fixed sizes never changes; the latest checkpoint does.
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=30"


def _rate_limit() -> str:
    return str(current_app.config["LOG_RATE_LIMIT"])


@bp.errorhandler(ApiProblem)
def _problem(problem: ApiProblem) -> ResponseReturnValue:
    return problem.response()


def _number(name: str, *, minimum: int = 0) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        raise invalid_parameter(name, f"{name} is required: a whole number")
    if not raw.isdigit() or len(raw) > 19:
        raise invalid_parameter(
            name, f"{name} must be a whole number between {minimum} and {MAX_NUMBER}"
        )
    value = int(raw)
    if not minimum <= value <= MAX_NUMBER:
        raise invalid_parameter(
            name, f"{name} must be a whole number between {minimum} and {MAX_NUMBER}"
        )
    return value


def _session_reads() -> None:
    db.session.connection(execution_options=READ_ONLY)


def _no_checkpoint() -> ApiProblem:
    return ApiProblem(
        404,
        "no-checkpoint",
        "No checkpoint yet",
        "The log has not signed a checkpoint yet; try again in a few minutes.",
        headers={"Retry-After": "300"},
    )


def _text(body: str, cache: str) -> Response:
    response = Response(body, mimetype="text/plain")
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["Cache-Control"] = cache
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _json(document: dict[str, object], cache: str) -> Response:
    response = jsonify(document)
    response.headers["Cache-Control"] = cache
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(item).decode() for item in items]


@bp.get("/checkpoint")
@limiter.limit(_rate_limit)
def checkpoint() -> ResponseReturnValue:
    _session_reads()
    latest = service.latest_checkpoint(db.session)
    if latest is None:
        raise _no_checkpoint()
    return _text(latest.note, SHORT)


@bp.get("/vkey")
@limiter.limit(_rate_limit)
def vkey() -> ResponseReturnValue:
    return _text(log_signer().verifier_key + "\n", "public, max-age=86400")


@bp.get("/checkpoints")
@limiter.limit(_rate_limit)
def checkpoints() -> ResponseReturnValue:
    after = _number("after") if "after" in request.args else 0
    _session_reads()
    rows = service.checkpoints_after(db.session, after, PAGE_SIZE + 1)
    page = rows[:PAGE_SIZE]
    return _json(
        {
            "checkpoints": [
                {
                    "size": row.size,
                    "root": base64.b64encode(row.root).decode(),
                    "checkpoint": row.note,
                    "created_at": rfc3339(row.created_at),
                }
                for row in page
            ],
            "next_after": page[-1].size if len(rows) > PAGE_SIZE else None,
        },
        SHORT,
    )


@bp.get("/proof/inclusion")
@limiter.limit(_rate_limit)
def inclusion() -> ResponseReturnValue:
    index = _number("index")
    size = _number("size", minimum=1)
    _session_reads()
    try:
        proof = service.inclusion(db.session, index, size)
    except service.NoCheckpoint:
        raise _no_checkpoint() from None
    except service.ProofRequestError as exc:
        raise invalid_parameter(exc.field, exc.detail) from None
    return _json({"index": index, "size": size, "hashes": _b64(proof)}, IMMUTABLE)


@bp.get("/proof/consistency")
@limiter.limit(_rate_limit)
def consistency() -> ResponseReturnValue:
    old = _number("from", minimum=1)
    new = _number("to", minimum=1)
    _session_reads()
    try:
        proof = service.consistency(db.session, old, new)
    except service.NoCheckpoint:
        raise _no_checkpoint() from None
    except service.ProofRequestError as exc:
        raise invalid_parameter(exc.field, exc.detail) from None
    return _json({"from": old, "to": new, "hashes": _b64(proof)}, IMMUTABLE)
