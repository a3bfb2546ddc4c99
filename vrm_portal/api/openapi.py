"""The brand API's OpenAPI 3.1 document, and the reference the docs page shows of it.

The schemas come from the pydantic models in ``schemas.py`` (the same ones the routes
validate with), the patterns and limits from ``views.py``: the document cannot drift from
the code without a test noticing. It is built once per app and cached.

Prose is in English in the document; the docs page shows it translated, so each sentence
is marked with ``_`` for extraction (``make messages``).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any, Literal

from flask import Flask, Response, current_app
from pydantic import BaseModel, Field

from vrm_portal.api import schemas, views
from vrm_portal.api.problems import TYPE_BASE
from vrm_portal.brands.clients import SCOPES
from vrm_portal.log import schemas as log_schemas

VERSION = "1.0.0"
#: Where ``components.schemas`` entries are referenced from.
REF = "#/components/schemas/{model}"
#: Stands for the portal's address in the curl examples (the docs page shows its value).
BASE = "$PORTAL"


def _(message: str) -> str:
    """Mark ``message`` for translation; the document keeps the English text."""
    return message


SCOPE_DESCRIPTIONS = {
    "consumers:read": _("Read your consumers and what their consents cover."),
    "changes:read": _("Read your change feed."),
    "interactions:write": _("Record interactions with your consumers."),
}


@dataclass(frozen=True)
class ProblemType:
    """A problem type of the API (RFC 9457): ``type`` is ``TYPE_BASE`` + ``slug``."""

    slug: str
    status: int
    #: As sent in ``title`` (not translated).
    title: str
    explanation: str

    @property
    def uri(self) -> str:
        return TYPE_BASE + self.slug


PROBLEM_TYPES = (
    ProblemType(
        "invalid-parameter",
        400,
        "Invalid parameter",
        _(
            "A query parameter is not valid. The 'errors' member names it and says what "
            "it must be; fix the call rather than retrying it."
        ),
    ),
    ProblemType(
        "unauthorized",
        401,
        "Unauthorized",
        _(
            "The access token is missing, unknown, revoked or expired. Ask POST /oauth/token "
            "for a new one, then retry."
        ),
    ),
    ProblemType(
        "insufficient-scope",
        403,
        "Insufficient scope",
        _(
            "The token does not carry the scope this operation needs. Ask for a token with "
            "that scope; the client must have been given it."
        ),
    ),
    ProblemType(
        "not-found",
        404,
        "Not found",
        _(
            "No consumer with this id is known to your brand. An unknown id, an erased "
            "consumer and another brand's id get the same answer, on purpose."
        ),
    ),
    ProblemType(
        "no-checkpoint",
        404,
        "No checkpoint yet",
        _(
            "The public log has not signed its first checkpoint yet; Retry-After says when "
            "to ask again."
        ),
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        _("The request body must be JSON, sent with 'Content-Type: application/json'."),
    ),
    ProblemType(
        "invalid-json",
        400,
        "Invalid JSON",
        _("The request body could not be read as JSON."),
    ),
    ProblemType(
        "validation-failed",
        422,
        "Validation failed",
        _(
            "The JSON does not match the schema, or a value is impossible (a time in the "
            "future, or before 1900). Each entry of 'errors' gives the field and what is "
            "wrong with it."
        ),
    ),
    ProblemType(
        "invalid-idempotency-key",
        400,
        "Invalid Idempotency-Key",
        _("The Idempotency-Key header must be 1 to 255 visible ASCII characters."),
    ),
    ProblemType(
        "idempotency-key-reused",
        422,
        "Idempotency-Key reused",
        _(
            "This Idempotency-Key was already used for a different request. A retry must "
            "send the same body; a new interaction needs a new key."
        ),
    ),
    ProblemType(
        "rate-limited",
        429,
        "Too many requests",
        _(
            "This client made too many calls. Wait the number of seconds given in "
            "Retry-After, then retry."
        ),
    ),
)

#: Errors of the token endpoint (RFC 6749 §5.2).
OAuthErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
]


class TokenRequest(BaseModel):
    """The token request (RFC 6749 §4.4.2), form-encoded; the client authenticates with
    HTTP Basic (its id and secret), never in the body."""

    grant_type: Literal["client_credentials"]
    scope: str | None = Field(
        None,
        description="Space-separated scopes; leave out to get all the client's scopes.",
        examples=["consumers:read changes:read"],
    )


class OAuthError(BaseModel):
    """An error of the token endpoint (RFC 6749 §5.2): not a problem document."""

    error: OAuthErrorCode
    error_description: str | None = None


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """``model``'s JSON Schema as a ``$ref``, its definitions hoisted into ``components``."""
    found = model.model_json_schema(ref_template=REF)
    for name, definition in {**found.pop("$defs", {}), model.__name__: found}.items():
        if components.setdefault(name, definition) != definition:
            raise ValueError(f"two different schemas are named {name!r}")
    return {"$ref": REF.format(model=model.__name__)}


def _json(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _problem_response(
    description: str, slugs: tuple[str, ...], headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    unknown = set(slugs) - {problem.slug for problem in PROBLEM_TYPES} - {"about:blank"}
    if unknown:
        raise ValueError(f"undocumented problem types: {sorted(unknown)}")
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}},
        "x-problem-types": list(slugs),
    }
    if headers:
        response["headers"] = headers
    return response


_CHALLENGE = {
    "WWW-Authenticate": {
        "description": _("The Bearer challenge (RFC 6750), with the error and, on 403, the scope."),
        "required": True,
        "schema": {"type": "string", "pattern": "^Bearer "},
    }
}


def _common_responses(scope: str) -> dict[str, Any]:
    return {
        "401": _problem_response(
            _("The token is missing, unknown, revoked or expired."), ("unauthorized",), _CHALLENGE
        ),
        "403": _problem_response(
            _("The token does not carry the scope this operation needs."),
            ("insufficient-scope",),
            _CHALLENGE,
        ),
        "429": _problem_response(
            _("This client is over its rate limit."),
            ("rate-limited",),
            {
                "Retry-After": {
                    "description": _("Seconds to wait before the next call."),
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        ),
    }


def _operation(
    *,
    operation_id: str,
    summary: str,
    description: str,
    scope: str | None,
    parameters: list[dict[str, Any]],
    responses: dict[str, Any],
    curl: str,
    request_body: dict[str, Any] | None = None,
    security: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": ["documentation" if scope is None and security is None else "brand API"],
    }
    if parameters:
        operation["parameters"] = parameters
    if request_body:
        operation["requestBody"] = request_body
    if security is not None:
        operation["security"] = security
    elif scope:
        operation["security"] = [{"brandOAuth": [scope]}]
        operation["x-scope"] = scope
        responses = {**responses, **_common_responses(scope)}
    else:
        operation["security"] = []
    operation["responses"] = dict(sorted(responses.items()))
    operation["x-codeSamples"] = [{"lang": "Shell", "label": "curl", "source": curl}]
    return operation


def _param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _parameters() -> dict[str, Any]:
    # Empty is taken as left out (from the start), as the routes do.
    digits = f"^({views._DIGITS.pattern})?$"
    return {
        "limit": {
            "name": "limit",
            "in": "query",
            "description": _("How many items to return."),
            "schema": {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": views.MAX_LIMIT},
                    {"const": "", "description": "Empty: the default."},
                ],
                "default": views.DEFAULT_LIMIT,
            },
        },
        "cursor": {
            "name": "cursor",
            "in": "query",
            "description": _(
                "The next_cursor of the previous page, as it was given; leave out for the "
                "first page."
            ),
            "schema": {
                "type": "string",
                "pattern": f"^({views._CONSUMER_CURSOR.pattern})?$",
                "description": f"0 to {views.MAX_CONSUMER_CURSOR}.",
            },
        },
        "after": {
            "name": "after",
            "in": "query",
            "description": _(
                "The next_cursor of your last read of the feed; 0 (the default) starts "
                "from the beginning."
            ),
            "schema": {
                "type": "string",
                "pattern": digits,
                "default": "0",
                "description": f"0 to {views.MAX_AFTER}.",
            },
        },
        "consumer_id": {
            "name": "consumer_id",
            "in": "path",
            "required": True,
            "description": _("Your brand's pairwise id for the consumer."),
            "schema": {"type": "string", "pattern": f"^{views._PAIRWISE.pattern}$"},
        },
        "interaction_id": {
            "name": "interaction_id",
            "in": "path",
            "required": True,
            "description": _("The interaction_id of an interaction your brand recorded."),
            "schema": {"type": "string", "pattern": f"^{views._PAIRWISE.pattern}$"},
        },
        "Idempotency-Key": {
            "name": "Idempotency-Key",
            "in": "header",
            "description": _(
                "A key of your choice, unique per interaction, that makes retries safe: a "
                "retry with the same key and body records nothing new and answers the "
                "first result again."
            ),
            "schema": {"type": "string", "pattern": f"^{views._IDEMPOTENCY_KEY.pattern}$"},
        },
    }


INTERACTION_EXAMPLE = {
    "type": "purchase",
    "occurred_at": "2026-11-20T10:30:00+01:00",
    "summary": "Bought winter tyres",
    "reference": "INV-2026-0042",
    "amount": {"value": "480.00", "currency": "EUR"},
    "details": {"store": "Lyon Est", "items": 4},
}


def _paths(components: dict[str, Any]) -> dict[str, Any]:
    bearer = 'curl -H "Authorization: Bearer $TOKEN" '
    consumer_page = _json(_schema(schemas.ConsumerPage, components))
    consumer = _json(_schema(schemas.ConsumerOut, components))
    change_page = _json(_schema(schemas.ChangePage, components))
    interaction_in = _schema(schemas.InteractionIn, components)
    interaction_out = _json(_schema(schemas.InteractionOut, components))
    _schema(schemas.Problem, components)
    token = _json(_schema(schemas.TokenResponse, components))
    token_request = _schema(TokenRequest, components)
    oauth_error = _json(_schema(OAuthError, components))
    body = json.dumps(INTERACTION_EXAMPLE)
    return {
        "/oauth/token": {
            "post": _operation(
                operation_id="getToken",
                summary=_("Get an access token"),
                description=_(
                    "OAuth 2.0 client-credentials grant (RFC 6749 §4.4). Authenticate with "
                    "HTTP Basic: the client id and secret. The token is valid for "
                    "expires_in seconds; ask for a new one when it expires."
                ),
                scope=None,
                security=[{"clientSecretBasic": []}],
                parameters=[],
                request_body={
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": token_request}},
                },
                responses={
                    "200": {
                        "description": _("A bearer token."),
                        "content": token,
                        "headers": {
                            "Cache-Control": {
                                "description": _("Never cache a token."),
                                "required": True,
                                "schema": {"type": "string", "const": "no-store"},
                            }
                        },
                    },
                    "400": {
                        "description": _(
                            "The request is not a valid client-credentials request "
                            "(invalid_request, unsupported_grant_type), or asks for a scope the "
                            "client does not have (invalid_scope)."
                        ),
                        "content": oauth_error,
                    },
                    "401": {
                        "description": _(
                            "Unknown client, wrong secret, revoked client, or credentials not "
                            "sent with HTTP Basic (invalid_client)."
                        ),
                        "content": oauth_error,
                        "headers": {
                            "WWW-Authenticate": {
                                "description": _("The Basic challenge, when credentials failed."),
                                "schema": {"type": "string", "pattern": "^Basic "},
                            }
                        },
                    },
                    "429": {
                        "description": _(
                            "Too many token requests from this address: wait Retry-After seconds."
                        ),
                        "content": {
                            "application/problem+json": {
                                "schema": {"$ref": REF.format(model="Problem")}
                            },
                        },
                        "headers": {
                            "Retry-After": {
                                "description": _("Seconds to wait before the next call."),
                                "schema": {"type": "integer", "minimum": 1},
                            }
                        },
                    },
                },
                curl=(
                    'curl -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials '
                    f'-d "scope=consumers:read changes:read" {BASE}/oauth/token'
                ),
            )
        },
        "/api/v1/consumers": {
            "get": _operation(
                operation_id="listConsumers",
                summary=_("List your consumers"),
                description=_(
                    "The consumers who have a relationship with your brand, in a stable "
                    "order, limit at a time. Each shows only what their active consents "
                    "cover. Follow next_cursor until it is null."
                ),
                scope="consumers:read",
                parameters=[_param("limit"), _param("cursor")],
                responses={
                    "200": {"description": _("A page of consumers."), "content": consumer_page},
                    "400": _problem_response(
                        _("limit or cursor is not valid, or cursor is beyond any consumer."),
                        ("invalid-parameter",),
                    ),
                },
                curl=f'{bearer}"{BASE}/api/v1/consumers?limit=100"',
            )
        },
        "/api/v1/consumers/{consumer_id}": {
            "get": _operation(
                operation_id="getConsumer",
                summary=_("Read one consumer"),
                description=_(
                    "One consumer, by your pairwise id, with only what their active consents cover."
                ),
                scope="consumers:read",
                parameters=[_param("consumer_id")],
                responses={
                    "200": {"description": _("The consumer."), "content": consumer},
                    "404": _problem_response(
                        _("No consumer with this id is known to your brand."), ("not-found",)
                    ),
                },
                curl=f'{bearer}"{BASE}/api/v1/consumers/$CONSUMER_ID"',
            )
        },
        "/api/v1/consumers/{consumer_id}/interactions": {
            "post": _operation(
                operation_id="recordInteraction",
                summary=_("Record an interaction"),
                description=_(
                    "Record what your brand did with or for the consumer (a purchase, a "
                    "service visit…); the consumer sees it in their history. Send an "
                    "Idempotency-Key so that a retry cannot record it twice."
                ),
                scope="interactions:write",
                parameters=[_param("consumer_id"), _param("Idempotency-Key")],
                request_body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": interaction_in,
                            "example": INTERACTION_EXAMPLE,
                        }
                    },
                },
                responses={
                    "201": {
                        "description": _(
                            "Recorded; or, for a retry with the same Idempotency-Key and "
                            "body, the interaction recorded the first time."
                        ),
                        "content": interaction_out,
                        "headers": {
                            "Location": {
                                "description": _("Where to read the interaction again."),
                                "required": True,
                                "schema": {"type": "string", "format": "uri-reference"},
                            },
                            "Idempotent-Replayed": {
                                "description": _(
                                    "Present, with the value true, when this answer replays "
                                    "an earlier request with the same Idempotency-Key."
                                ),
                                "schema": {"type": "string", "enum": ["true"]},
                            },
                        },
                    },
                    "400": _problem_response(
                        _("The Idempotency-Key header is not valid, or the body is not JSON."),
                        ("invalid-idempotency-key", "invalid-json"),
                    ),
                    "404": _problem_response(
                        _("No consumer with this id is known to your brand."), ("not-found",)
                    ),
                    "413": _problem_response(_("The body is larger than 1 MiB."), ("about:blank",)),
                    "415": _problem_response(
                        _("The body is not sent as application/json."),
                        ("unsupported-media-type",),
                    ),
                    "422": _problem_response(
                        _(
                            "The interaction does not match the schema, happened in the "
                            "future or before 1900, or reuses an Idempotency-Key with another "
                            "body."
                        ),
                        ("validation-failed", "idempotency-key-reused"),
                    ),
                },
                curl=(
                    f'curl -X POST -H "Authorization: Bearer $TOKEN" '
                    f'-H "Content-Type: application/json" -H "Idempotency-Key: INV-2026-0042" '
                    f"-d '{body}' \"{BASE}/api/v1/consumers/$CONSUMER_ID/interactions\""
                ),
            )
        },
        "/api/v1/consumers/{consumer_id}/interactions/{interaction_id}": {
            "get": _operation(
                operation_id="getInteraction",
                summary=_("Read an interaction you recorded"),
                description=_(
                    "An interaction your brand recorded for the consumer, as it was answered "
                    "when recorded: the Location of that answer."
                ),
                scope="interactions:write",
                parameters=[_param("consumer_id"), _param("interaction_id")],
                responses={
                    "200": {"description": _("The interaction."), "content": interaction_out},
                    "404": _problem_response(
                        _("No such interaction of your brand for this consumer."),
                        ("not-found",),
                    ),
                },
                curl=(
                    f'{bearer}"{BASE}/api/v1/consumers/$CONSUMER_ID/interactions/$INTERACTION_ID"'
                ),
            )
        },
        "/api/v1/changes": {
            "get": _operation(
                operation_id="listChanges",
                summary=_("Read your change feed"),
                description=_(
                    "What changed for your consumers since your last read, oldest first: "
                    "consents granted, withdrawn, expired or needing renewal after a new "
                    "text version, interests and plans changed, consumers erased. Keep "
                    "next_cursor and pass it as after next time."
                ),
                scope="changes:read",
                parameters=[_param("after"), _param("limit")],
                responses={
                    "200": {"description": _("The next changes."), "content": change_page},
                    "400": _problem_response(
                        _("after or limit is not valid."), ("invalid-parameter",)
                    ),
                },
                curl=f'{bearer}"{BASE}/api/v1/changes?after=0&limit=100"',
            )
        },
        **_log_paths(components),
        "/api/v1/openapi.json": {
            "get": _operation(
                operation_id="getOpenApiDocument",
                summary=_("This OpenAPI document"),
                description=_("The OpenAPI 3.1 document of the API. No token needed."),
                scope=None,
                parameters=[],
                responses={
                    "200": {
                        "description": _("The document."),
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                curl=f'curl "{BASE}/api/v1/openapi.json"',
            )
        },
        "/api/v1/docs": {
            "get": _operation(
                operation_id="getDocs",
                summary=_("The API documentation"),
                description=_("This reference as a web page. No token needed."),
                scope=None,
                parameters=[],
                responses={
                    "200": {
                        "description": _("The page."),
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
                curl=f'curl "{BASE}/api/v1/docs"',
            )
        },
    }


def _number(name: str, description: str, minimum: int, required: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": 10**18},
    }


def _log_paths(components: dict[str, Any]) -> dict[str, Any]:
    """The public consent log (docs/consent-log.md): no token; cacheable; rate-limited."""
    inclusion = _json(_schema(log_schemas.InclusionProof, components))
    consistency = _json(_schema(log_schemas.ConsistencyProof, components))
    listing = _json(_schema(log_schemas.CheckpointList, components))
    text = {"text/plain": {"schema": {"type": "string"}}}
    limited = _problem_response(
        _("Over the rate limit of the public log (per client address)."), ("rate-limited",)
    )
    none_yet = _problem_response(
        _("No checkpoint has been signed yet."),
        ("no-checkpoint",),
        {"Retry-After": {"description": _("Seconds."), "schema": {"type": "integer"}}},
    )
    bad = _problem_response(
        _("A number is missing, not a whole number, or outside the published log."),
        ("invalid-parameter",),
    )

    def public(operation_id: str, summary: str, description: str, **extra: Any) -> dict[str, Any]:
        return {
            "get": _operation(
                operation_id=operation_id,
                summary=summary,
                description=description,
                scope=None,
                **extra,
            )
        }

    return {
        "/log/checkpoint": public(
            "getCheckpoint",
            _("The latest checkpoint of the consent log"),
            _(
                "The latest signed tree head: a C2SP tlog-checkpoint (origin, tree size, "
                "base64 root hash, extension lines) in a C2SP signed-note with an Ed25519 "
                "signature. Keep it, and check the next one is consistent with it."
            ),
            parameters=[],
            responses={
                "200": {"description": _("The signed note."), "content": text},
                "404": none_yet,
                "429": limited,
            },
            curl=f'curl "{BASE}/log/checkpoint"',
        ),
        "/log/vkey": public(
            "getVerifierKey",
            _("The checkpoints' verifier key"),
            _("<name>+<key id, 8 hex digits>+<base64(0x01 || Ed25519 public key)>."),
            parameters=[],
            responses={"200": {"description": _("The key."), "content": text}, "429": limited},
            curl=f'curl "{BASE}/log/vkey"',
        ),
        "/log/checkpoints": public(
            "listCheckpoints",
            _("Earlier checkpoints"),
            _("Every checkpoint signed, by increasing size, from after= on (keyset pages)."),
            parameters=[_number("after", _("List the checkpoints of a larger size."), 0, False)],
            responses={
                "200": {"description": _("A page of checkpoints."), "content": listing},
                "400": bad,
                "429": limited,
            },
            curl=f'curl "{BASE}/log/checkpoints?after=0"',
        ),
        "/log/proof/inclusion": public(
            "getInclusionProof",
            _("An event's inclusion proof"),
            _(
                "The audit path of leaf index (the event of seq index + 1) in the tree of "
                "size leaves (RFC 9162 §2.1.3). size is at most the latest checkpoint's."
            ),
            parameters=[
                _number("index", _("The leaf, from 0."), 0),
                _number("size", _("The tree size (a checkpoint's)."), 1),
            ],
            responses={
                "200": {"description": _("The proof."), "content": inclusion},
                "400": bad,
                "404": none_yet,
                "429": limited,
            },
            curl=f'curl "{BASE}/log/proof/inclusion?index=0&size=1"',
        ),
        "/log/proof/consistency": public(
            "getConsistencyProof",
            _("A consistency proof between two tree sizes"),
            _(
                "The proof that the tree of size to extends the tree of size from (RFC 9162 "
                "§2.1.4): how a kept checkpoint shows the log only grew."
            ),
            parameters=[
                _number("from", _("The older size."), 1),
                _number("to", _("The newer size (at most the latest checkpoint's)."), 1),
            ],
            responses={
                "200": {"description": _("The proof."), "content": consistency},
                "400": bad,
                "404": none_yet,
                "429": limited,
            },
            curl=f'curl "{BASE}/log/proof/consistency?from=1&to=1"',
        ),
    }


def _description(rate_limit: str, token_ttl: int) -> str:
    problems = "\n".join(
        f"- `{problem.uri}` ({problem.status}): {problem.explanation}" for problem in PROBLEM_TYPES
    )
    return f"""\
The brand API of the VRM Portal: a brand reads the consumers who have a relationship with
it, and what their consents allow it to see; follows a change feed to stay in sync; and
records its interactions with them.

## Access tokens
`POST /oauth/token` (OAuth 2.0 client credentials, the client id and secret sent with HTTP
Basic) gives a bearer token valid {token_ttl} seconds, with the scopes asked for (by
default all the client's). Send it as `Authorization: Bearer <token>`.

## Pairwise ids
Each brand knows a consumer by its own `consumer_id` (a UUID): the same person has a
different id at each brand, so brands cannot join their data. An unknown id, an erased
consumer and another brand's id all answer 404 `not-found`.

## Consent projection
A consumer shows only what their **active** consents for your brand cover: a consent is
active when it is granted, to the purpose's current text version, and not expired.
`consents` lists them. {inspect.cleandoc(schemas.Profile.__doc__ or "")}
`interests` and `intents` are present only under an active personalisation consent. A
field no active consent covers is absent, not null.

## Cursors
`GET /api/v1/consumers` pages in a stable order: pass the `next_cursor` of a page as
`?cursor=` to get the next one; it is null on the last page. `GET /api/v1/changes` returns
the feed after `?after=` (0 = from the start); keep its `next_cursor` (it stays put when
nothing new has happened) and pass it as `after` next time: the feed never skips nor
repeats an entry. Cursors are strings of 1 to 18 ASCII digits; treat them as opaque.

## Idempotency
`POST /api/v1/consumers/{{consumer_id}}/interactions` accepts an `Idempotency-Key` header
(1 to 255 visible ASCII characters). A retry with the same key and body records nothing
new and answers 201 with the first result and `Idempotent-Replayed: true`; the same key
with another body is refused (422 `idempotency-key-reused`).

## Rate limits
Each client has its own budget of calls: {rate_limit or "no limit"}. Over it, calls
answer 429 `rate-limited` with `Retry-After` (seconds). The token endpoint
allows 60 requests a minute from one address.

## Errors
Errors are `application/problem+json` (RFC 9457) with `type`, `title`, `status`,
`detail` and, for bad input, `errors` (a list of `location`, `field`, `message`). The
token endpoint answers RFC 6749 errors instead (`error`, `error_description`).

{problems}
"""


def build_document(rate_limit: str, token_ttl: int) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``/api/v1`` and ``POST /oauth/token``, for an app whose
    per-client limit is ``rate_limit`` and whose tokens live ``token_ttl`` seconds."""
    components: dict[str, Any] = {}
    paths = _paths(components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "VRM Portal brand API",
            "version": VERSION,
            "description": _description(rate_limit, token_ttl),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "brand API", "description": "Needs a bearer token with a scope."},
            {"name": "documentation", "description": "Public."},
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "parameters": _parameters(),
            "securitySchemes": {
                "brandOAuth": {
                    "type": "oauth2",
                    "description": "A bearer token from POST /oauth/token.",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/oauth/token",
                            "scopes": {scope: SCOPE_DESCRIPTIONS[scope] for scope in SCOPES},
                        }
                    },
                },
                "clientSecretBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The client id and secret, for the token endpoint only.",
                },
            },
        },
    }


def document(app: Flask) -> dict[str, Any]:
    """The document, built on first use and kept for the app's life (do not modify it)."""
    cached: dict[str, Any] | None = app.extensions.get("vrm_openapi")
    if cached is None:
        cached = app.extensions["vrm_openapi"] = build_document(
            (app.config.get("API_RATE_LIMIT") or "").strip(), app.config["API_TOKEN_TTL_SECONDS"]
        )
    return cached


def document_response() -> Response:
    """``GET /api/v1/openapi.json``: public, and cacheable for a few minutes."""
    response = Response(
        json.dumps(document(current_app), ensure_ascii=False, separators=(",", ":")),
        mimetype="application/json",
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
