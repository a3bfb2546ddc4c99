"""Which providers the settings configure: presets, the generic OpenID Connect contract,
and clear errors for settings that cannot work."""

from __future__ import annotations

import pytest

from config import ConfigError, load_config, social_providers_from_env
from tests.accounts.flows import text
from vrm_portal.accounts.social.providers import build_providers, callback_url


def test_a_generic_provider_is_configured_by_its_issuer_alone():
    settings = social_providers_from_env(
        {
            "VRM_OIDC_FRANCE_CONNECT_ISSUER": "https://fc.example/api/v2/",
            "VRM_OIDC_FRANCE_CONNECT_CLIENT_ID": "portal",
            "VRM_OIDC_FRANCE_CONNECT_CLIENT_SECRET": "s3cret",
            "VRM_OIDC_FRANCE_CONNECT_DISPLAY_NAME": "FranceConnect",
            "VRM_OIDC_KEYCLOAK2_ISSUER": "https://id.example/realms/vrm",
            "VRM_OIDC_KEYCLOAK2_CLIENT_ID": "vrm",
            "VRM_OIDC_KEYCLOAK2_CLIENT_SECRET": "x",
        }
    )
    providers = build_providers(settings)
    assert list(providers) == ["france-connect", "keycloak2"]
    fc = providers["france-connect"]
    assert fc.display_name == "FranceConnect"
    assert fc.issuer == "https://fc.example/api/v2"
    assert fc.discovery_url == "https://fc.example/api/v2/.well-known/openid-configuration"
    assert fc.scopes == "openid email profile"
    assert providers["keycloak2"].display_name == "Keycloak2"
    assert (
        callback_url("https://vrm.example.com/", "france-connect")
        == "https://vrm.example.com/auth/oauth/france-connect/callback"
    )


def test_presets_are_configured_by_their_client_credentials():
    settings = social_providers_from_env(
        {
            "VRM_GOOGLE_CLIENT_ID": "g",
            "VRM_GOOGLE_CLIENT_SECRET": "gs",
            "VRM_MICROSOFT_CLIENT_ID": "m",
            "VRM_MICROSOFT_CLIENT_SECRET": "ms",
            "VRM_MICROSOFT_TENANT": "contoso.onmicrosoft.com",
            "VRM_GITHUB_CLIENT_ID": "h",
            "VRM_GITHUB_CLIENT_SECRET": "hs",
            "VRM_GITHUB_DISPLAY_NAME": "GitHub (work)",
            "VRM_FACEBOOK_CLIENT_ID": "f",
            "VRM_FACEBOOK_CLIENT_SECRET": "fs",
            "VRM_FACEBOOK_SCOPES": "email",
            "VRM_APPLE_CLIENT_ID": "com.example.vrm",
            "VRM_APPLE_CLIENT_SECRET": "signed-elsewhere",
        }
    )
    providers = build_providers(settings)
    assert list(providers) == ["google", "microsoft", "apple", "facebook", "github"]
    assert providers["google"].issuer == "https://accounts.google.com"
    microsoft = providers["microsoft"]
    assert microsoft.issuer == "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
    assert not microsoft.issuer_template
    assert providers["github"].kind == "oauth2"
    assert providers["github"].display_name == "GitHub (work)"
    assert providers["facebook"].scopes == "email"
    assert providers["apple"].token_auth_method == "client_secret_post"


def test_microsoft_for_any_tenant_checks_the_issuer_against_the_tenant_in_the_token():
    providers = build_providers(
        social_providers_from_env(
            {"VRM_MICROSOFT_CLIENT_ID": "m", "VRM_MICROSOFT_CLIENT_SECRET": "s"}
        )
    )
    assert providers["microsoft"].issuer_template


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"VRM_OIDC_ACME_ISSUER": "https://a", "VRM_OIDC_ACME_CLIENT_ID": "x"}, "CLIENT_SECRET"),
        ({"VRM_OIDC_ACME_CLIENT_ID": "x", "VRM_OIDC_ACME_CLIENT_SECRET": "y"}, "ISSUER"),
        ({"VRM_OIDC_ACME_TENANT": "x"}, "not a known setting"),
        ({"VRM_OIDC_AC__ME_ISSUER": "https://a"}, "may hold only"),
        ({"VRM_OIDC_AC%ME_ISSUER": "https://a"}, "may hold only"),
        ({"VRM_GOOGLE_CLIENT_SECRET": "x"}, "VRM_GOOGLE_CLIENT_ID"),
        (
            {
                "VRM_GOOGLE_CLIENT_ID": "g",
                "VRM_GOOGLE_CLIENT_SECRET": "s",
                "VRM_OIDC_GOOGLE_ISSUER": "https://a",
                "VRM_OIDC_GOOGLE_CLIENT_ID": "g",
                "VRM_OIDC_GOOGLE_CLIENT_SECRET": "s",
            },
            "already a preset",
        ),
    ],
)
def test_unusable_environment_settings_are_clear_errors(environ, message):
    with pytest.raises(ConfigError, match=message):
        social_providers_from_env(environ)


def test_unusable_provider_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="token auth method"):
        build_providers(
            {
                "x": {
                    "preset": "oidc",
                    "issuer": "https://a",
                    "client_id": "c",
                    "client_secret": "s",
                    "token_auth_method": "private_key_jwt",
                }
            }
        )
    with pytest.raises(ConfigError, match="VRM_APPLE_TEAM_ID"):
        build_providers({"apple": {"preset": "apple", "client_id": "c"}})
    with pytest.raises(ConfigError, match="lower-case"):
        build_providers({"Bad_Name": {"preset": "oidc", "issuer": "https://a"}})


def test_settings_read_the_environment_and_refuse_the_dev_provider_outside_development(
    monkeypatch,
):
    monkeypatch.setenv("VRM_OIDC_ACME_ISSUER", "https://id.acme.example")
    monkeypatch.setenv("VRM_OIDC_ACME_CLIENT_ID", "portal")
    monkeypatch.setenv("VRM_OIDC_ACME_CLIENT_SECRET", "secret")
    assert load_config()["SOCIAL_PROVIDERS"]["acme"]["issuer"] == "https://id.acme.example"
    with pytest.raises(ConfigError, match="VRM_DEV_IDP"):
        load_config({"DEV_IDP": True})
    with pytest.raises(ConfigError, match="VRM_SOCIAL_TIMEOUT_SECONDS"):
        load_config({"SOCIAL_HTTP_TIMEOUT": 0})


def test_only_configured_providers_appear_on_the_sign_in_and_register_pages(client):
    for path in ("/login", "/register"):
        page = text(client.get(path))
        assert "Continue with Test ID" in page
        assert "Continue with Second ID" in page
        assert 'href="/auth/oauth/test-id/start"' in page
        assert "Google" not in page
        assert "Demo ID" not in page
