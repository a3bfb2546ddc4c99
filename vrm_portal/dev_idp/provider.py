"""The identity provider's logic: clients, codes, tokens and signed ID tokens.

Authorization code flow with PKCE (S256 only), ``client_secret_basic`` or
``client_secret_post`` at the token endpoint, RS256 ID tokens, discovery, JWKS and
user info. State is held in memory: it is a development tool, not a product.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_SECONDS = 60
TOKEN_SECONDS = 300


@dataclass
class Quirks:
    """Ways to make the provider misbehave, for the tests' attack and failure scenarios.

    The development server never sets them; the test fixture does, on its own instance.
    """

    #: Sign ID tokens with this ``iss`` instead of the real issuer.
    issuer: str | None = None
    #: Sign ID tokens for this audience instead of the client.
    audience: str | None = None
    #: Answer the token request with the previous ID token (its nonce is another flow's).
    replay_id_token: bool = False
    #: Sleep this long before answering the token request ("the provider is slow").
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class DemoIdentity:
    """Who signs in at the provider: the login page lets anyone be anyone."""

    subject: str
    email: str
    email_verified: bool
    name: str = ""


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    state: str
    scope: str
    nonce: str | None
    code_challenge: str
    response_mode: str

    def as_fields(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "scope": self.scope,
            "nonce": self.nonce or "",
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
            "response_type": "code",
            "response_mode": self.response_mode,
        }


@dataclass(frozen=True)
class _Grant:
    request: AuthorizationRequest
    identity: DemoIdentity
    expires_at: float


class AuthorizationError(Exception):
    """A request the provider refuses; ``redirectable`` when the client may be told."""

    def __init__(self, error: str, description: str, *, redirectable: bool = False) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirectable = redirectable


class TokenError(Exception):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


def subject_for(email: str) -> str:
    """A stable subject for a demo address, when the login page does not give one."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:20]


@dataclass
class IdentityProvider:
    issuer: str
    quirks: Quirks = field(default_factory=Quirks)
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"}
        )
    )
    clients: dict[str, Client] = field(default_factory=dict)
    last_id_token: str | None = None
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _access_tokens: dict[str, tuple[DemoIdentity, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register_client(self, client_id: str, secret: str, *redirect_uris: str) -> Client:
        client = Client(client_id, secret, tuple(redirect_uris))
        self.clients[client_id] = client
        return client

    def metadata(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name"],
            "authorization_response_iss_parameter_supported": True,
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def check_authorization_request(self, args: dict[str, str]) -> AuthorizationRequest:
        """The validated request, or ``AuthorizationError`` (RFC 6749 §4.1.2.1)."""
        client = self.clients.get(args.get("client_id", ""))
        if client is None:
            raise AuthorizationError("invalid_client", "Unknown client_id.")
        redirect_uri = args.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise AuthorizationError("invalid_request", "This redirect_uri is not registered.")
        if args.get("response_type") != "code":
            raise AuthorizationError(
                "unsupported_response_type", "Only the code flow.", redirectable=True
            )
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            raise AuthorizationError(
                "invalid_request", "PKCE with S256 is required.", redirectable=True
            )
        return AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            state=args.get("state", ""),
            scope=args.get("scope", ""),
            nonce=args.get("nonce") or None,
            code_challenge=args["code_challenge"],
            response_mode=args.get("response_mode") or "query",
        )

    def approve(self, request: AuthorizationRequest, identity: DemoIdentity) -> dict[str, str]:
        """The parameters of the answer to send back to the client: a new code."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(request, identity, time.time() + CODE_SECONDS)
        return {"code": code, "state": request.state, "iss": self.issuer}

    def deny(self, request: AuthorizationRequest) -> dict[str, str]:
        """The answer when the person cancels at the provider."""
        return {"error": "access_denied", "state": request.state, "iss": self.issuer}

    @staticmethod
    def redirect_location(request: AuthorizationRequest, params: dict[str, str]) -> str:
        separator = "&" if "?" in request.redirect_uri else "?"
        return request.redirect_uri + separator + urlencode(params)

    def _authenticate_client(self, form: dict[str, str], basic: tuple[str, str] | None) -> Client:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, secret):
            raise TokenError("invalid_client", 401)
        return client

    def exchange_code(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """The token response for an authorization code (single use), or ``TokenError``."""
        if self.quirks.delay_seconds:
            time.sleep(self.quirks.delay_seconds)
        client = self._authenticate_client(form, basic)
        if form.get("grant_type") != "authorization_code":
            raise TokenError("unsupported_grant_type")
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at < time.time():
            raise TokenError("invalid_grant")
        request = grant.request
        if (
            request.client_id != client.client_id
            or form.get("redirect_uri") != request.redirect_uri
        ):
            raise TokenError("invalid_grant")
        verifier = form.get("code_verifier", "")
        if not verifier or create_s256_code_challenge(verifier) != request.code_challenge:
            raise TokenError("invalid_grant")
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access_token] = (grant.identity, time.time() + TOKEN_SECONDS)
        response: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": request.scope,
        }
        if "openid" in request.scope.split():
            id_token = self._id_token(client, request, grant.identity)
            if self.quirks.replay_id_token and self.last_id_token:
                id_token = self.last_id_token
            self.last_id_token = id_token
            response["id_token"] = id_token
        return response

    def _id_token(
        self, client: Client, request: AuthorizationRequest, identity: DemoIdentity
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.quirks.issuer or self.issuer,
            "sub": identity.subject,
            "aud": self.quirks.audience or client.client_id,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "auth_time": now,
            "email": identity.email,
            "email_verified": identity.email_verified,
        }
        if identity.name:
            claims["name"] = identity.name
        if request.nonce:
            claims["nonce"] = request.nonce
        header = {"alg": "RS256", "kid": self.key.kid}
        return jwt.encode(header, claims, self.key)

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        scheme, _, token = (authorization or "").partition(" ")
        with self._lock:
            found = self._access_tokens.get(token) if scheme.lower() == "bearer" else None
        if found is None or found[1] < time.time():
            raise TokenError("invalid_token", 401)
        identity = found[0]
        info: dict[str, Any] = {
            "sub": identity.subject,
            "email": identity.email,
            "email_verified": identity.email_verified,
        }
        if identity.name:
            info["name"] = identity.name
        return info
