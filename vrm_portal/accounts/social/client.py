"""The round trip through a provider, through Authlib's Flask client.

``state``, ``nonce`` and the PKCE verifier live in the browser's session under a key
per ``state`` (Authlib's ``_state_<provider>_<state>``), so several sign-ins started in
several tabs can each finish. Metadata and keys are fetched lazily (a provider being
down never stops the portal), with a timeout, and cached by Authlib once fetched.
Every failure becomes ``SocialSignInFailed`` with a reason the views can explain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from vrm_portal.accounts.social.errors import SocialSignInFailed
from vrm_portal.accounts.social.providers import OIDC, Provider

EXTENSION = "vrm_social"
#: Clock skew allowed on ID token times, in seconds.
LEEWAY = 60


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in. ``email_verified`` only when it vouches for it."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str = ""


@dataclass(frozen=True)
class Answer:
    """A finished round trip: the identity, and what the portal meant to do with it."""

    identity: ProviderIdentity
    intent: dict[str, Any]


class SocialClients:
    """The app's providers and one Authlib client for each."""

    def __init__(self, app: Flask, providers: Mapping[str, Provider], timeout: float) -> None:
        self.providers = dict(providers)
        self.oauth = OAuth(app)
        for provider in self.providers.values():
            kwargs: dict[str, Any] = {
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
                "client_kwargs": {
                    "scope": provider.scopes,
                    "code_challenge_method": "S256",
                    "token_endpoint_auth_method": provider.token_auth_method,
                    "default_timeout": timeout,
                },
            }
            if provider.kind == OIDC:
                kwargs["server_metadata_url"] = provider.discovery_url
            else:
                kwargs["authorize_url"] = provider.authorize_url
                kwargs["access_token_url"] = provider.token_url
            self.oauth.register(provider.name, overwrite=True, **kwargs)

    def client(self, name: str) -> Any:
        return self.oauth.create_client(name)


def init_app(app: Flask, providers: Mapping[str, Provider]) -> None:
    app.extensions[EXTENSION] = SocialClients(
        app, providers, float(app.config["SOCIAL_HTTP_TIMEOUT"])
    )


def configured_providers() -> dict[str, Provider]:
    clients: SocialClients = current_app.extensions[EXTENSION]
    return clients.providers


def _client(provider: Provider) -> Any:
    clients: SocialClients = current_app.extensions[EXTENSION]
    return clients.client(provider.name)


@contextmanager
def _talking_to(provider: Provider) -> Iterator[None]:
    """Turn whatever goes wrong on the wire or in the tokens into ``SocialSignInFailed``."""
    try:
        yield
    except SocialSignInFailed:
        raise
    except requests.Timeout as exc:
        raise SocialSignInFailed("timeout", str(exc)) from exc
    except requests.ConnectionError as exc:
        raise SocialSignInFailed("unreachable", str(exc)) from exc
    except (requests.RequestException, ValueError, KeyError, RuntimeError) as exc:
        raise SocialSignInFailed("provider_error", repr(exc)) from exc
    except OAuthError as exc:
        raise SocialSignInFailed("provider_error", str(exc.error)) from exc
    except JoseError as exc:
        raise SocialSignInFailed("invalid_token", repr(exc)) from exc


def _metadata(provider: Provider, client: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = client.load_server_metadata()
    # OpenID Connect Discovery §4.3: the document must name the issuer we trust.
    if (
        provider.kind == OIDC
        and not provider.issuer_template
        and str(metadata.get("issuer", "")).rstrip("/") != provider.issuer
    ):
        client.server_metadata.clear()
        raise SocialSignInFailed("provider_error", "discovery names another issuer")
    return metadata


def begin(provider: Provider, redirect_uri: str, intent: dict[str, Any]) -> str:
    """Remember a new round trip in the browser's session; returns the provider's URL."""
    client = _client(provider)
    with _talking_to(provider):
        _metadata(provider, client)
        answer = client.create_authorization_url(
            redirect_uri, **dict(provider.extra_authorize_params)
        )
    url: str = answer.pop("url")
    client.save_authorize_data(redirect_uri=redirect_uri, intent=intent, **answer)
    return url


def finish(provider: Provider, params: Mapping[str, str]) -> Answer:
    """Check the provider's answer against the session and exchange the code.

    The state must be one this browser started (else ``state_mismatch``); the ID token
    must be signed by the provider's keys, for this client (``aud``), by the issuer we
    trust (``iss``), fresh, and carry this round trip's nonce (else ``invalid_token``).
    """
    client = _client(provider)
    state = params.get("state") or ""
    data: dict[str, Any] | None = client.framework.get_state_data(session, state) if state else None
    if not data:
        raise SocialSignInFailed("state_mismatch")
    client.framework.clear_state_data(session, state)
    intent: dict[str, Any] = data.get("intent") or {}
    if params.get("error"):
        reason = "cancelled" if params["error"] == "access_denied" else "provider_error"
        raise SocialSignInFailed(reason, params["error"])
    with _talking_to(provider):
        metadata = _metadata(provider, client)
        returned_issuer = params.get("iss")
        # RFC 9207: an ``iss`` in the answer must be our provider's (mix-up attacks).
        if (
            returned_issuer
            and not provider.issuer_template
            and not _issuer_matches(provider, metadata, returned_issuer, {})
        ):
            raise SocialSignInFailed("invalid_token", "authorization response from another issuer")
        if provider.apple_signing:
            client.client_secret = _apple_client_secret(provider)
        token = client.fetch_access_token(
            code=params.get("code") or "",
            redirect_uri=data.get("redirect_uri"),
            code_verifier=data.get("code_verifier"),
        )
        if provider.kind == OIDC:
            identity = _oidc_identity(provider, client, metadata, token, data.get("nonce"))
        else:
            identity = _oauth2_identity(provider, client, token)
    return Answer(identity, intent)


def _issuer_matches(
    provider: Provider, metadata: Mapping[str, Any], issuer: str, claims: Mapping[str, Any]
) -> bool:
    if provider.issuer_template:
        expected = str(metadata.get("issuer", "")).replace("{tenantid}", str(claims.get("tid", "")))
        return "{tenantid}" not in expected and issuer == expected
    return issuer.rstrip("/") == provider.issuer


def _oidc_identity(
    provider: Provider, client: Any, metadata: Mapping[str, Any], token: Any, nonce: Any
) -> ProviderIdentity:
    if "id_token" not in token or not nonce:
        raise SocialSignInFailed("invalid_token", "no ID token")
    options: dict[str, Any] = {
        "iss": {
            "essential": True,
            "validate": lambda claims, value: _issuer_matches(provider, metadata, value, claims),
        },
        "aud": {"essential": True, "values": [provider.client_id]},
        "sub": {"essential": True},
        "exp": {"essential": True},
    }
    claims = client.parse_id_token(token, nonce=nonce, claims_options=options, leeway=LEEWAY)
    info: dict[str, Any] = dict(claims)
    if not info.get("email") and metadata.get("userinfo_endpoint"):
        response = client.get(metadata["userinfo_endpoint"], token=token)
        response.raise_for_status()
        extra = response.json()
        if str(extra.get("sub")) == str(info["sub"]):
            info.update({k: extra[k] for k in ("email", "email_verified", "name") if k in extra})
    verified = info.get("email_verified")
    if provider.preset == "microsoft" and verified is None:
        # Microsoft sends no email_verified; xms_edov says whether the domain owner vouches.
        verified = info.get("xms_edov")
    return ProviderIdentity(
        provider=provider.name,
        subject=str(info["sub"]),
        email=_email_claim(info.get("email")),
        email_verified=verified in (True, "true", "True", 1, "1"),
        name=str(info.get("name") or ""),
    )


def _oauth2_identity(provider: Provider, client: Any, token: Any) -> ProviderIdentity:
    """Facebook and GitHub: no ID token; their user-info APIs say who signed in."""
    response = client.get(provider.userinfo_url, token=token)
    response.raise_for_status()
    profile = response.json()
    email = _email_claim(profile.get("email"))
    verified = False
    if provider.preset == "github":
        emails = client.get("https://api.github.com/user/emails", token=token)
        emails.raise_for_status()
        for entry in emails.json():
            if entry.get("primary") and entry.get("verified"):
                email, verified = _email_claim(entry.get("email")), True
    # Facebook does not say whether it checked the address: it is not vouched for.
    return ProviderIdentity(
        provider=provider.name,
        subject=str(profile["id"]),
        email=email,
        email_verified=verified and email is not None,
        name=str(profile.get("name") or ""),
    )


def _email_claim(value: Any) -> str | None:
    """The address exactly as the provider gave it (None if it gave none): the service
    judges it by the sign-up form's rules, and refuses it, rather than tidy it up here."""
    return value if isinstance(value, str) and value else None


def _apple_client_secret(provider: Provider) -> str:
    """Apple's client secret is a short-lived JWT signed with the team's key."""
    assert provider.apple_signing is not None
    team_id, key_id, pem = provider.apple_signing
    now = int(time.time())
    claims = {
        "iss": team_id,
        "iat": now,
        "exp": now + 300,
        "aud": "https://appleid.apple.com",
        "sub": provider.client_id,
    }
    return jwt.encode({"alg": "ES256", "kid": key_id}, claims, ECKey.import_key(pem))
