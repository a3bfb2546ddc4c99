"""Provider presets, and the providers an app is configured with.

``config.py`` reads the ``VRM_*`` variables into plain settings; ``build_providers``
turns them into ``Provider`` values with each preset's endpoints and defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from config import PROVIDER_NAME, ConfigError

OIDC = "oidc"
OAUTH2 = "oauth2"
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


@dataclass(frozen=True)
class Provider:
    """One configured way to sign in. ``kind`` is ``oidc`` (ID token) or ``oauth2``
    (a user-info API gives the identity: Facebook, GitHub)."""

    name: str
    display_name: str
    kind: str
    client_id: str
    client_secret: str
    scopes: str
    token_auth_method: str = "client_secret_basic"
    #: OpenID Connect: the issuer the ID tokens must carry, and where its metadata is.
    issuer: str | None = None
    discovery_url: str | None = None
    #: OAuth2 presets: fixed endpoints.
    authorize_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    #: Whether the provider's ``email_verified`` can be believed; see ``profile``.
    preset: str = OIDC
    #: Microsoft multi-tenant endpoints: the issuer holds ``{tenantid}``.
    issuer_template: bool = False
    #: Apple: the client secret is a JWT signed with this key (team id, key id, PEM).
    apple_signing: tuple[str, str, str] | None = None
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)


def _preset(
    name: str, settings: Mapping[str, str], defaults: dict[str, str | None]
) -> dict[str, str | None]:
    values: dict[str, str | None] = dict(defaults)
    for key in ("client_id", "client_secret", "scopes", "display_name", "token_auth_method"):
        if settings.get(key):
            values[key] = settings[key]
    return values


def _microsoft(settings: Mapping[str, str]) -> dict[str, object]:
    tenant = settings.get("tenant", "common")
    multi = tenant in {"common", "organizations", "consumers"}
    issuer = (
        "https://login.microsoftonline.com/{tenantid}/v2.0"
        if multi
        else f"https://login.microsoftonline.com/{tenant}/v2.0"
    )
    return {
        "issuer": issuer,
        "discovery_url": (
            f"https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration"
        ),
        "issuer_template": multi,
    }


def _apple(name: str, settings: Mapping[str, str]) -> dict[str, object]:
    if settings.get("client_secret"):
        return {}
    needed = ("team_id", "key_id", "private_key_file")
    missing = [f"VRM_APPLE_{k.upper()}" for k in needed if not settings.get(k)]
    if missing:
        raise ConfigError(
            "Sign in with Apple needs VRM_APPLE_CLIENT_SECRET, or "
            + ", ".join(missing)
            + " to sign one"
        )
    path = Path(settings["private_key_file"])
    if not path.is_file():
        raise ConfigError(f"VRM_APPLE_PRIVATE_KEY_FILE: no file at {path}")
    return {
        "apple_signing": (settings["team_id"], settings["key_id"], path.read_text()),
        # Apple sends the answer as a form post when name or email is asked for.
        "extra_authorize_params": {"response_mode": "form_post"},
    }


_DEFAULTS: dict[str, dict[str, str | None]] = {
    "google": {
        "kind": OIDC,
        "display_name": "Google",
        "scopes": "openid email profile",
        "issuer": "https://accounts.google.com",
    },
    "microsoft": {"kind": OIDC, "display_name": "Microsoft", "scopes": "openid email profile"},
    "apple": {
        "kind": OIDC,
        "display_name": "Apple",
        "scopes": "openid email name",
        "issuer": "https://appleid.apple.com",
        "token_auth_method": "client_secret_post",
    },
    "facebook": {
        "kind": OAUTH2,
        "display_name": "Facebook",
        "scopes": "email public_profile",
        "authorize_url": "https://www.facebook.com/v19.0/dialog/oauth",
        "token_url": "https://graph.facebook.com/v19.0/oauth/access_token",
        "userinfo_url": "https://graph.facebook.com/v19.0/me?fields=id,name,email",
        "token_auth_method": "client_secret_post",
    },
    "github": {
        "kind": OAUTH2,
        "display_name": "GitHub",
        "scopes": "read:user user:email",
        "authorize_url": "https://github.com/login/oauth/authorize",
        "token_url": "https://github.com/login/oauth/access_token",
        "userinfo_url": "https://api.github.com/user",
        "token_auth_method": "client_secret_post",
    },
    OIDC: {"kind": OIDC, "scopes": "openid email profile"},
}


def build_provider(name: str, settings: Mapping[str, str]) -> Provider:
    """The provider ``name`` from its settings (``preset`` says which defaults apply)."""
    if not PROVIDER_NAME.match(name):
        raise ConfigError(f"social provider name {name!r}: use lower-case letters, digits, dashes")
    preset = settings.get("preset", OIDC)
    if preset not in _DEFAULTS:
        raise ConfigError(f"social provider {name!r}: unknown preset {preset!r}")
    values: dict[str, object] = dict(_preset(name, settings, _DEFAULTS[preset]))
    values.setdefault("display_name", name.replace("-", " ").title())
    if preset == OIDC:
        issuer = settings.get("issuer", "").rstrip("/") or None
        discovery = settings.get("discovery_url") or None
        if issuer is None and discovery is None:
            raise ConfigError(f"social provider {name!r}: set its issuer or discovery URL")
        if issuer is None and discovery is not None:
            issuer = discovery.removesuffix("/.well-known/openid-configuration")
        values["issuer"] = issuer
        values["discovery_url"] = discovery
    if preset == "microsoft":
        values.update(_microsoft(settings))
    if preset == "apple":
        values.update(_apple(name, settings))
    if not values.get("client_id"):
        raise ConfigError(f"social provider {name!r}: the client id is missing")
    if not values.get("client_secret") and not values.get("apple_signing"):
        raise ConfigError(f"social provider {name!r}: the client secret is missing")
    method = str(values.get("token_auth_method") or "client_secret_basic")
    if method not in TOKEN_AUTH_METHODS:
        raise ConfigError(
            f"social provider {name!r}: token auth method must be one of "
            + ", ".join(TOKEN_AUTH_METHODS)
        )
    issuer_url = _str_or_none(values.get("issuer"))
    discovery_url = _str_or_none(values.get("discovery_url"))
    if values["kind"] == OIDC and not discovery_url and issuer_url:
        discovery_url = issuer_url + "/.well-known/openid-configuration"
    return Provider(
        name=name,
        display_name=str(values["display_name"]),
        kind=str(values["kind"]),
        client_id=str(values["client_id"]),
        client_secret=str(values.get("client_secret") or ""),
        scopes=str(values["scopes"]),
        token_auth_method=method,
        issuer=issuer_url,
        discovery_url=discovery_url,
        authorize_url=_str_or_none(values.get("authorize_url")),
        token_url=_str_or_none(values.get("token_url")),
        userinfo_url=_str_or_none(values.get("userinfo_url")),
        preset=preset,
        issuer_template=bool(values.get("issuer_template")),
        apple_signing=values.get("apple_signing"),  # type: ignore[arg-type]
        extra_authorize_params=values.get("extra_authorize_params") or {},  # type: ignore[arg-type]
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def build_providers(settings: Mapping[str, Mapping[str, str]]) -> dict[str, Provider]:
    """Every configured provider, by name, in a stable order (presets, then by name)."""
    order = {preset: index for index, preset in enumerate(_DEFAULTS)}
    names = sorted(settings, key=lambda n: (order.get(n, len(order)), n))
    return {name: build_provider(name, settings[name]) for name in names}


def callback_url(public_base_url: str, name: str) -> str:
    """The redirect URI to register with the provider: the contract in the README."""
    return f"{public_base_url.rstrip('/')}/auth/oauth/{name}/callback"
