"""OAuth2 for brands: the token endpoint (Authlib, client-credentials grant, HTTP Basic)
and the bearer-token check every ``/api/v1`` route runs.

The check is one indexed query joining the token to its client, so revoking a client
(``revoked_at``) stops all its tokens at once, in every worker.
"""

from __future__ import annotations

import base64
import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.util import scope_to_list
from flask import Blueprint, Flask, current_app, g, request
from flask.typing import ResponseReturnValue
from limits import RateLimitItem, parse_many
from sqlalchemy import bindparam, select

from vrm_portal.accounts.tokens import hash_secret
from vrm_portal.api.problems import ApiProblem, forbidden_scope, unauthorized
from vrm_portal.brands import clients
from vrm_portal.brands.models import ApiClient, ApiToken
from vrm_portal.clock import utcnow
from vrm_portal.db import READ_ONLY
from vrm_portal.extensions import csrf, db, limiter
from vrm_portal.history.recorder import AccessRecorder

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])

server = AuthorizationServer()
bp = Blueprint("oauth", __name__)


class _Client(ClientMixin):  # type: ignore[misc]
    """Authlib's view of an ``ApiClient`` row."""

    def __init__(self, row: ApiClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.row.scopes.split())
        return " ".join(s for s in scope_to_list(scope or "") if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        # The secret before the last rotation also works while its grace period lasts.
        return clients.digest_matches(self.row, hash_secret(client_secret), utcnow())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


#: What a secret is compared with when the client id is unknown or revoked: every failed
#: authentication hashes and compares once, so neither the answer nor its time tells
#: which client ids exist.
_NO_CLIENT_HASH = hash_secret(secrets.token_urlsafe(32))


class _UnknownClient(_Client):
    """Stands for a client id that is unknown or revoked: its secret never matches."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id

    def get_client_id(self) -> str:
        return self.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        secrets.compare_digest(_NO_CLIENT_HASH, hash_secret(client_secret))
        return False


class _ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
    """The grant, limited to the scopes the client was given (all of them by default)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

    def validate_requested_scope(self) -> None:
        super().validate_requested_scope()
        client: _Client = self.request.client
        asked = set(scope_to_list(self.request.payload.scope or ""))
        if not asked <= set(client.row.scopes.split()):
            raise InvalidScopeError(description="This client may not ask for that scope.")

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: _Client = self.request.client
        asked = scope_to_list(self.request.payload.scope or "") or []
        scope = " ".join(asked) or client.row.scopes
        token = self.generate_token(scope=scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    """The client id and secret of an HTTP Basic header (RFC 6749 §2.3.1), each ``""``
    when missing or unreadable (not base64, not UTF-8, control characters in the id)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(token.strip()).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError
        return "", ""
    client_id, _, secret = decoded.partition(":")
    client_id, secret = unquote(client_id), unquote(secret)
    return (client_id if client_id.isprintable() else ""), secret


def _authenticate_basic(query_client: Callable[[str], _Client], request: Any) -> _Client | None:
    """``client_secret_basic``, doing the same work whatever is wrong: one client lookup
    and one secret check, for a missing header, an unknown or revoked id or a wrong
    secret alike. Authlib's own answers an unknown id sooner, with other words."""
    client_id, secret = _basic_credentials(request.headers.get("Authorization"))
    client = query_client(client_id)
    return client if client.check_client_secret(secret) else None


def _query_client(client_id: str) -> _Client:
    """The client, or a stand-in whose secret check does the same work and fails."""
    row = clients.find_client(db.session, client_id)
    if row is None or row.revoked_at is not None:
        return _UnknownClient(client_id)
    return _Client(row)


def _save_token(token: dict[str, Any], oauth_request: Any) -> None:
    client: _Client = oauth_request.client
    clients.store_token(
        db.session,
        client.row.id,
        token["access_token"],
        token["scope"],
        int(token["expires_in"]),
        utcnow(),
    )


def _new_token(*_args: Any, **_kwargs: Any) -> str:
    return secrets.token_urlsafe(32)


def init_app(app: Flask) -> None:
    app.config.setdefault(
        "OAUTH2_TOKEN_EXPIRES_IN", {"client_credentials": app.config["API_TOKEN_TTL_SECONDS"]}
    )
    app.config.setdefault("OAUTH2_ACCESS_TOKEN_GENERATOR", _new_token)
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", list(clients.SCOPES))
    server.init_app(app, query_client=_query_client, save_token=_save_token)
    server.register_grant(_ClientCredentials)
    server.register_client_auth_method("client_secret_basic", _authenticate_basic)
    csrf.exempt(bp)
    app.register_blueprint(bp)
    if app.config["ACCESS_RECORDS"] == "buffered":
        with app.app_context():
            app.extensions["vrm_access_recorder"] = AccessRecorder(db.engine)
    budget = (app.config["API_RATE_LIMIT"] or "").strip()
    app.extensions["vrm_api_limits"] = [] if budget.lower() in ("", "off") else parse_many(budget)


@bp.post("/oauth/token")
@limiter.limit("60 per minute")
def token() -> ResponseReturnValue:
    """RFC 6749 §4.4: exchange the client's id and secret for a bearer token."""
    response = server.create_token_response()
    return cast(ResponseReturnValue, response)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the client, its brand and the scopes of its token."""

    client_pk: int
    client_id: str
    brand_id: int
    scopes: frozenset[str]


#: Built once: every API call runs it (a token, its client, both revocation marks).
_TOKEN = (
    select(
        ApiToken.scope,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        ApiClient.id,
        ApiClient.client_id,
        ApiClient.brand_id,
        ApiClient.revoked_at,
    )
    .join(ApiClient, ApiClient.id == ApiToken.client_pk)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def authenticate(authorization: str | None, now: datetime) -> Caller:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized(
            "Send an access token: 'Authorization: Bearer <token>' (get one from "
            "POST /oauth/token).",
            error="invalid_request",
        )
    row = db.session.execute(_TOKEN, {"token_hash": hash_secret(value.strip())}).first()
    if row is None or row[2] is not None or row[6] is not None:
        raise unauthorized("This access token is not valid (unknown or revoked).")
    if row[1] <= now:
        raise unauthorized("This access token has expired; ask POST /oauth/token for a new one.")
    return Caller(row[3], row[4], row[5], frozenset(row[0].split()))


def _rate_limit(caller: Caller) -> None:
    items: list[RateLimitItem] = current_app.extensions["vrm_api_limits"]
    if not items:
        return
    for item in items:
        if not limiter.limiter.hit(item, "vrm-api", caller.client_id):
            stats = limiter.limiter.get_window_stats(item, "vrm-api", caller.client_id)
            retry = max(1, int(stats.reset_time - time.time()) + 1)
            raise ApiProblem(
                429,
                "rate-limited",
                "Too many requests",
                f"This client is over its limit of {item}. Retry in {retry} s.",
                headers={"Retry-After": str(retry)},
            )


def require(scope: str) -> Callable[[F], F]:
    """Let the route run only for a valid token that carries ``scope``; sets ``g.caller``."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            if request.method == "GET" and "vrm_access_recorder" in current_app.extensions:
                # A read stays a read: no write lock on SQLite (records are written apart).
                db.session.connection(execution_options=READ_ONLY)
            caller = authenticate(request.headers.get("Authorization"), utcnow())
            if scope not in caller.scopes:
                raise forbidden_scope(scope)
            _rate_limit(caller)
            g.caller = caller
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def current_caller() -> Caller:
    caller: Caller = g.caller
    return caller
