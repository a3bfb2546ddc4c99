"""Application-wide behaviour: configuration, health probes, headers, error pages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config import ConfigError, load_config
from tests.conftest import app_overrides
from vrm_portal import create_app
from vrm_portal.accounts.models import Account
from vrm_portal.consent.receipts import generate_key_file
from vrm_portal.extensions import db


def test_production_refuses_to_start_without_a_secret_key(monkeypatch):
    monkeypatch.setenv("VRM_ENV", "production")
    with pytest.raises(ConfigError, match="VRM_SECRET_KEY"):
        load_config({"SECRET_KEY": None, "PUBLIC_BASE_URL": "https://vrm.example"})


def test_production_refuses_a_short_secret_key(monkeypatch):
    monkeypatch.setenv("VRM_ENV", "production")
    with pytest.raises(ConfigError, match="at least 32"):
        load_config({"SECRET_KEY": "short", "PUBLIC_BASE_URL": "https://vrm.example"})


def test_production_requires_a_public_url_and_an_smtp_host(monkeypatch):
    monkeypatch.setenv("VRM_ENV", "production")
    key = "k" * 40
    with pytest.raises(ConfigError, match="VRM_PUBLIC_BASE_URL"):
        load_config({"SECRET_KEY": key, "PUBLIC_BASE_URL": None})
    with pytest.raises(ConfigError, match="VRM_SMTP_HOST"):
        load_config({"SECRET_KEY": key, "PUBLIC_BASE_URL": "https://vrm.example"})


#: What production must say about who runs the portal (README, "Configuration").
OPERATOR = {
    "OPERATOR_NAME": "Example Group SAS",
    "OPERATOR_ADDRESS": "1 rue Exemple, 75001 Paris, France",
    "DPO_CONTACT": "dpo@example.com",
    "SUPERVISORY_AUTHORITY_NAME": "CNIL",
    "SUPERVISORY_AUTHORITY_URL": "https://www.cnil.fr/",
}
#: Every other setting production requires.
PRODUCTION = {
    "SECRET_KEY": "p" * 48,
    "PUBLIC_BASE_URL": "https://vrm.example",
    "SMTP_HOST": "127.0.0.1",
    "RECEIPT_SIGNING_KEY_FILE": "/etc/vrm/receipts.pem",
    "LOG_SIGNING_KEY_FILE": "/etc/vrm/log.pem",
}


@pytest.mark.parametrize("name", sorted(OPERATOR))
def test_production_must_say_who_runs_the_portal(monkeypatch, name):
    monkeypatch.setenv("VRM_ENV", "production")
    assert load_config(PRODUCTION | OPERATOR)["OPERATOR_NAME"] == "Example Group SAS"
    with pytest.raises(ConfigError, match=f"^VRM_{name} must be set to "):
        load_config(PRODUCTION | OPERATOR | {name: None})


def test_development_names_the_demo_operator():
    config = load_config()
    assert config["OPERATOR_NAME"] == "Demo Brand Group SAS"
    assert config["OPERATOR_ADDRESS"] == "1 place de la Démo, 69002 Lyon, France"
    assert config["DPO_CONTACT"] == "dpo@demo.vrm.example"
    assert config["SUPERVISORY_AUTHORITY_NAME"] == "CNIL"
    assert config["SUPERVISORY_AUTHORITY_URL"] == "https://www.cnil.fr/"


@pytest.mark.parametrize(
    "contact", ["nobody", "dpo@example", "mailto:dpo@example.com", "ftp://example.com/dpo"]
)
def test_a_dpo_contact_must_be_an_email_address_or_a_web_page(contact):
    with pytest.raises(ConfigError, match=r"^VRM_DPO_CONTACT must be an email address"):
        load_config({"DPO_CONTACT": contact})


@pytest.mark.parametrize("contact", ["dpo@example.com", "https://example.com/privacy/contact"])
def test_a_dpo_contact_may_be_an_email_address_or_a_web_page(contact):
    assert load_config({"DPO_CONTACT": contact})["DPO_CONTACT"] == contact


@pytest.mark.parametrize(
    "url", ["www.cnil.fr", "javascript:alert(1)", "https://", "https://www.cnil .fr/"]
)
def test_the_supervisory_authority_needs_a_web_address(url):
    with pytest.raises(ConfigError, match=r"^VRM_SUPERVISORY_AUTHORITY_URL must be an http"):
        load_config({"SUPERVISORY_AUTHORITY_URL": url})


def test_unknown_environment_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("VRM_ENV", "staging")
    with pytest.raises(ConfigError, match="VRM_ENV must be one of"):
        load_config()


def _production_app(database_url: str, key_file: Path):
    generate_key_file(key_file)
    log_key_file = key_file.with_name("log.pem")
    generate_key_file(log_key_file)
    previous = os.environ.get("VRM_ENV")
    os.environ["VRM_ENV"] = "production"
    try:
        return create_app(
            PRODUCTION
            | OPERATOR
            | {
                "DATABASE_URL": database_url,
                "RECEIPT_SIGNING_KEY_FILE": str(key_file),
                "LOG_SIGNING_KEY_FILE": str(log_key_file),
            }
        )
    finally:
        os.environ["VRM_ENV"] = previous or "testing"


def test_production_cookies_are_secure_and_hsts_is_sent(database_url, engine, tmp_path):
    app = _production_app(database_url, tmp_path / "receipts.pem")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = app.test_client().get("/healthz")
    app.extensions["vrm_db"].engine.dispose()
    assert "max-age=" in response.headers["Strict-Transport-Security"]


def test_development_does_not_send_hsts(client):
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_healthz_says_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_when_the_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok"}


def test_readyz_is_503_when_the_database_is_unreachable():
    app = create_app(
        {"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"}
    )
    response = app.test_client().get("/readyz")
    app.extensions["vrm_db"].engine.dispose()
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "unreachable"}


def test_every_page_carries_the_security_headers(client):
    headers = client.get("/").headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"


def test_pages_are_not_cached_but_static_files_are_cacheable(client):
    assert client.get("/").headers["Cache-Control"] == "no-store"
    with client.get("/static/app.css") as static:
        assert static.status_code == 200
        assert "no-store" not in static.headers.get("Cache-Control", "")


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_json_clients_get_problem_details(client):
    response = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404


def test_wrong_method_is_a_405_page(client):
    response = client.delete("/login")
    assert response.status_code == 405


def test_oversized_body_is_refused_with_413(client):
    response = client.post("/login", data={"email": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)


def test_unexpected_error_is_a_500_page_and_rolls_back(
    database_url, smtp, tmp_path, connection, db_session
):
    app = create_app(app_overrides(database_url, smtp[0], tmp_path))
    db.bind_to_connection(app, connection)

    def boom() -> str:
        db.session.add(Account(email="ghost@example.com", password_hash="x"))
        db.session.flush()
        raise RuntimeError("boom")

    app.add_url_rule("/_test_boom", "test_boom", boom)
    response = app.test_client().get("/_test_boom")
    app.extensions["vrm_db"].engine.dispose()
    assert response.status_code == 500
    assert "Nothing was changed" in response.get_data(as_text=True)
    count = db_session.scalar(select(func.count()).where(Account.email == "ghost@example.com"))
    assert count == 0


# These set REDIS_URL on the suite's app rather than building another app: Flask-Limiter's
# storage lives on the one global Limiter, so a second app would re-point it for all.
def test_readyz_checks_redis_when_rate_limits_live_there(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:6379/15")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "rate_limits": "ok"}


def test_readyz_is_degraded_but_ready_when_redis_is_unreachable(app, client, monkeypatch):
    # The portal serves without Redis (tests/test_outages.py): still ready, naming it.
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "degraded",
        "checks": {"database": "ok", "rate_limits": "unreachable"},
    }
