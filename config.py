"""Settings for VRM Portal, read from ``VRM_*`` environment variables.

One class per environment. ``load_config()`` picks the class named by ``VRM_ENV``
(``production`` when unset, so a forgotten variable fails safe) and validates it.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent
INSTANCE_PATH = Path(os.environ.get("VRM_INSTANCE_PATH", PROJECT_ROOT / "instance"))


class ConfigError(RuntimeError):
    """A setting is missing or unusable; the message says which and how to fix it."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    DEBUG = False
    TESTING = False

    SECRET_KEY: str | None = _env("VRM_SECRET_KEY")
    DATABASE_URL: str = _env("VRM_DATABASE_URL") or f"sqlite:///{INSTANCE_PATH / 'vrm.sqlite3'}"
    REDIS_URL: str | None = _env("VRM_REDIS_URL")
    PUBLIC_BASE_URL: str | None = _env("VRM_PUBLIC_BASE_URL")
    PROXY_HOPS = _env_int("VRM_PROXY_HOPS", 0)

    MAIL_BACKEND = _env("VRM_MAIL_BACKEND", "smtp")
    MAIL_FROM = _env("VRM_MAIL_FROM", "VRM Portal <no-reply@vrm.invalid>")
    MAIL_OUTBOX_DIR = str(INSTANCE_PATH / "outbox")
    SMTP_HOST = _env("VRM_SMTP_HOST")
    SMTP_PORT = _env_int("VRM_SMTP_PORT", 25)
    SMTP_USERNAME = _env("VRM_SMTP_USERNAME")
    SMTP_PASSWORD = _env("VRM_SMTP_PASSWORD")
    SMTP_TLS = _env("VRM_SMTP_TLS", "none")
    SMTP_TIMEOUT_SECONDS = _env_int("VRM_SMTP_TIMEOUT_SECONDS", 10)

    SESSION_IDLE = timedelta(minutes=_env_int("VRM_SESSION_IDLE_MINUTES", 30))
    SESSION_ABSOLUTE = timedelta(hours=_env_int("VRM_SESSION_ABSOLUTE_HOURS", 12))
    REMEMBER_FOR = timedelta(days=_env_int("VRM_REMEMBER_DAYS", 30))
    EMAIL_VERIFICATION_TTL = timedelta(hours=48)
    EMAIL_CHANGE_TTL = timedelta(hours=24)
    PASSWORD_RESET_TTL = timedelta(hours=1)

    #: PEM file of the key that signs consent receipts (Ed25519 or ECDSA P-256).
    RECEIPT_SIGNING_KEY_FILE: str | None = _env("VRM_RECEIPT_SIGNING_KEY_FILE")
    #: Development only: create the key file above when it does not exist.
    RECEIPT_KEY_AUTOGENERATE = False
    #: How long the link that confirms an email consent (double opt-in) stays valid.
    CONSENT_CONFIRMATION_TTL = timedelta(hours=48)

    LOGIN_RATE_LIMIT = _env("VRM_LOGIN_RATE_LIMIT", "10 per minute;60 per hour")
    LOGIN_PER_EMAIL_RATE_LIMIT = _env("VRM_LOGIN_PER_EMAIL_RATE_LIMIT", "5 per minute;30 per hour")
    EMAIL_RATE_LIMIT = _env("VRM_EMAIL_RATE_LIMIT", "5 per minute;20 per hour")

    # Flask and extension settings derived from the above.
    MAX_CONTENT_LENGTH = 1024 * 1024
    SESSION_COOKIE_NAME = "vrm_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_NAME = "vrm_remember"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = True
    WTF_CSRF_TIME_LIMIT = 3600 * 4
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "UTC"
    BABEL_TRANSLATION_DIRECTORIES = str(PROJECT_ROOT / "vrm_portal" / "translations")
    # Retry-After is sent by the 429 handler only, not on every rate-limited response.
    RATELIMIT_HEADERS_ENABLED = False
    RATELIMIT_STRATEGY = "fixed-window"
    HSTS = True

    def validate(self) -> None:
        """Refuse to start with settings that would be unsafe or unusable."""
        if not self.SECRET_KEY or len(self.SECRET_KEY) < 32:
            raise ConfigError(
                "VRM_SECRET_KEY must be set to a random string of at least 32 characters "
                '(for instance: python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if not self.PUBLIC_BASE_URL:
            raise ConfigError("VRM_PUBLIC_BASE_URL must be set, e.g. https://vrm.example.com")
        if self.MAIL_BACKEND not in {"smtp", "outbox"}:
            raise ConfigError("VRM_MAIL_BACKEND must be 'smtp' or 'outbox'")
        if self.MAIL_BACKEND == "smtp" and not self.SMTP_HOST:
            raise ConfigError("VRM_SMTP_HOST must be set when VRM_MAIL_BACKEND is smtp")
        if self.SMTP_TLS not in {"none", "starttls", "ssl"}:
            raise ConfigError("VRM_SMTP_TLS must be one of none, starttls, ssl")
        if not self.RECEIPT_SIGNING_KEY_FILE:
            raise ConfigError(
                "VRM_RECEIPT_SIGNING_KEY_FILE must name the PEM file of the consent receipt "
                "signing key (for instance: openssl genpkey -algorithm ed25519 -out receipts.pem)"
            )

    def as_flask_mapping(self) -> dict[str, Any]:
        names = (n for n in dir(self) if n.isupper())
        mapping = {name: getattr(self, name) for name in names}
        mapping["SQLALCHEMY_DATABASE_URI"] = self.DATABASE_URL
        mapping["RATELIMIT_STORAGE_URI"] = self.REDIS_URL or "memory://"
        mapping["PERMANENT_SESSION_LIFETIME"] = self.REMEMBER_FOR
        mapping["REMEMBER_COOKIE_DURATION"] = self.REMEMBER_FOR
        return mapping


class ProductionConfig(Config):
    ENV_NAME = "production"


class DevelopmentConfig(Config):
    """Runs offline on SQLite: mail goes to instance/outbox, cookies work over http."""

    ENV_NAME = "development"
    DEBUG = False
    MAIL_BACKEND = _env("VRM_MAIL_BACKEND", "outbox")
    PUBLIC_BASE_URL = _env("VRM_PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    HSTS = False

    RECEIPT_KEY_AUTOGENERATE = True

    def validate(self) -> None:
        if not self.SECRET_KEY:
            self.SECRET_KEY = _development_secret_key()
        if not self.RECEIPT_SIGNING_KEY_FILE:
            self.RECEIPT_SIGNING_KEY_FILE = str(INSTANCE_PATH / "receipt_signing_key.pem")
        super().validate()


class TestingConfig(DevelopmentConfig):
    """Used by the test suite; the fixtures override database and mail settings."""

    ENV_NAME = "testing"
    TESTING = True
    MAIL_BACKEND = "outbox"
    PUBLIC_BASE_URL = "http://localhost"
    SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
    RATELIMIT_STORAGE_URI = "memory://"


def _development_secret_key() -> str:
    """A key generated once and kept in the instance folder, so restarts keep sessions."""
    path = INSTANCE_PATH / "secret_key"
    if path.exists():
        return path.read_text().strip()
    INSTANCE_PATH.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


CONFIGS: dict[str, type[Config]] = {
    "production": ProductionConfig,
    "development": DevelopmentConfig,
    "testing": TestingConfig,
}


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the validated Flask config mapping for ``VRM_ENV`` plus ``overrides``."""
    env_name = _env("VRM_ENV", "production") or "production"
    try:
        config_class = CONFIGS[env_name]
    except KeyError as exc:
        raise ConfigError(
            f"VRM_ENV must be one of {', '.join(sorted(CONFIGS))}, got {env_name!r}"
        ) from exc
    config = config_class()
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    config.validate()
    return config.as_flask_mapping()
