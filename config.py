"""Settings for VRM Portal, read from ``VRM_*`` environment variables.

One class per environment. ``load_config()`` picks the class named by ``VRM_ENV``
(``production`` when unset, so a forgotten variable fails safe) and validates it.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent
INSTANCE_PATH = Path(os.environ.get("VRM_INSTANCE_PATH", PROJECT_ROOT / "instance"))


class ConfigError(RuntimeError):
    """A setting is missing or unusable; the message says which and how to fix it."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


#: Settings that could not be read when this module was imported: ``load_config()``
#: refuses to start with the first one, as a ``ConfigError`` like any other bad setting
#: (raising here would fail the import with a traceback instead).
_UNREADABLE: list[str] = []


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        _UNREADABLE.append(f"{name} must be a whole number, got {raw!r}")
        return default


_EMAIL = re.compile(r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/.]+$")


def is_web_url(value: str) -> bool:
    """An absolute ``http://`` or ``https://`` URL with a host and no spaces."""
    if any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def is_email_address(value: str) -> bool:
    """Looks like ``name@domain.tld`` (a sanity check on a setting, not RFC 5322)."""
    return bool(_EMAIL.match(value))


#: Social sign-in presets and the settings each reads from ``VRM_<PRESET>_<FIELD>``.
SOCIAL_PRESETS: dict[str, tuple[str, ...]] = {
    "google": ("CLIENT_ID", "CLIENT_SECRET", "SCOPES", "DISPLAY_NAME", "TOKEN_AUTH_METHOD"),
    "microsoft": (
        "CLIENT_ID",
        "CLIENT_SECRET",
        "TENANT",
        "SCOPES",
        "DISPLAY_NAME",
        "TOKEN_AUTH_METHOD",
    ),
    "apple": (
        "CLIENT_ID",
        "CLIENT_SECRET",
        "TEAM_ID",
        "KEY_ID",
        "PRIVATE_KEY_FILE",
        "SCOPES",
        "DISPLAY_NAME",
    ),
    "facebook": ("CLIENT_ID", "CLIENT_SECRET", "SCOPES", "DISPLAY_NAME", "TOKEN_AUTH_METHOD"),
    "github": ("CLIENT_ID", "CLIENT_SECRET", "SCOPES", "DISPLAY_NAME", "TOKEN_AUTH_METHOD"),
}
#: Settings of a generic OpenID Connect provider: ``VRM_OIDC_<NAME>_<FIELD>``.
OIDC_FIELDS = (
    "ISSUER",
    "DISCOVERY_URL",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SCOPES",
    "DISPLAY_NAME",
    "TOKEN_AUTH_METHOD",
)
#: A provider name: lower-case letters, digits and dashes (it appears in the callback URL).
PROVIDER_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_OIDC_VARIABLE = re.compile(r"^VRM_OIDC_(.+?)_(" + "|".join(OIDC_FIELDS) + r")$")


def social_providers_from_env(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The social sign-in providers the environment configures, as plain settings.

    Presets need ``VRM_<PRESET>_CLIENT_ID``; a generic OpenID Connect provider NAME is
    ``VRM_OIDC_<NAME>_ISSUER`` (or ``_DISCOVERY_URL``), ``_CLIENT_ID`` and
    ``_CLIENT_SECRET``, NAME upper-cased with dashes as underscores. Each mapping holds
    the lower-cased field names plus ``preset`` (``oidc`` for generic providers).
    """
    providers: dict[str, dict[str, str]] = {}
    for preset, fields in SOCIAL_PRESETS.items():
        prefix = f"VRM_{preset.upper()}_"
        values = {
            f.lower(): v.strip() for f in fields if (v := environ.get(prefix + f, "").strip())
        }
        if values:
            if "client_id" not in values:
                raise ConfigError(f"{prefix}CLIENT_ID must be set to sign in with {preset}")
            providers[preset] = {"preset": preset, **values}
    generic: dict[str, dict[str, str]] = {}
    for variable, raw in environ.items():
        if not variable.startswith("VRM_OIDC_") or not raw.strip():
            continue
        match = _OIDC_VARIABLE.match(variable)
        if match is None:
            raise ConfigError(
                f"{variable} is not a known setting: use VRM_OIDC_<NAME>_<FIELD> with FIELD "
                f"one of {', '.join(OIDC_FIELDS)}"
            )
        env_name, field = match.groups()
        name = env_name.lower().replace("_", "-")
        if not PROVIDER_NAME.match(name):
            raise ConfigError(
                f"{variable}: the provider name {env_name!r} may hold only letters, digits "
                "and single underscores (dashes in the name become underscores)"
            )
        generic.setdefault(name, {"preset": "oidc"})[field.lower()] = raw.strip()
    for name, values in sorted(generic.items()):
        env_name = name.upper().replace("-", "_")
        if name in providers:
            raise ConfigError(f"VRM_OIDC_{env_name}_*: {name!r} is already a preset's name")
        if "issuer" not in values and "discovery_url" not in values:
            raise ConfigError(f"VRM_OIDC_{env_name}_ISSUER must be set (the provider's issuer URL)")
        for field in ("client_id", "client_secret"):
            if field not in values:
                raise ConfigError(f"VRM_OIDC_{env_name}_{field.upper()} must be set")
        providers[name] = values
    return providers


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

    #: Who runs the portal, on the help page and in every page's footer (GDPR art. 13:
    #: who is responsible, how to reach its data protection officer, where to complain).
    #: Required in production; development shows a fictional operator.
    OPERATOR_NAME: str | None = _env("VRM_OPERATOR_NAME")
    OPERATOR_ADDRESS: str | None = _env("VRM_OPERATOR_ADDRESS")
    #: An email address, or the http(s) URL of a contact page.
    DPO_CONTACT: str | None = _env("VRM_DPO_CONTACT")
    SUPERVISORY_AUTHORITY_NAME: str | None = _env("VRM_SUPERVISORY_AUTHORITY_NAME")
    SUPERVISORY_AUTHORITY_URL: str | None = _env("VRM_SUPERVISORY_AUTHORITY_URL")

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
    #: JWKS (JSON) of the retired receipt keys' public halves, written by
    #: ``vrm rotate-receipt-key``; default ``<key file without .pem>.retired.json`` beside it.
    RECEIPT_RETIRED_KEYS_FILE: str | None = _env("VRM_RECEIPT_RETIRED_KEYS_FILE")
    #: PEM file of the Ed25519 key that signs the public log's checkpoints (not the
    #: receipt key). Development creates ``instance/log_signing_key.pem``.
    LOG_SIGNING_KEY_FILE: str | None = _env("VRM_LOG_SIGNING_KEY_FILE")
    LOG_KEY_AUTOGENERATE = False
    #: The log's name in its checkpoints; default ``<public host>/consent-log``.
    LOG_ORIGIN: str | None = _env("VRM_LOG_ORIGIN")
    #: Requests per client address to the public /log endpoints.
    LOG_RATE_LIMIT = _env("VRM_LOG_RATE_LIMIT", "300 per minute")
    #: How long the link that confirms an email consent (double opt-in) stays valid.
    CONSENT_CONFIRMATION_TTL = timedelta(hours=48)
    #: Account deletion: how long a scheduled erasure waits, so the consumer can cancel it.
    ERASURE_GRACE = timedelta(days=_env_int("VRM_ERASURE_GRACE_DAYS", 30))
    #: An account without a password may be deleted only this soon after signing in.
    ERASURE_REAUTH_WINDOW = timedelta(minutes=10)
    #: Social and OpenID Connect sign-in: name -> settings (see social_providers_from_env).
    SOCIAL_PROVIDERS: dict[str, dict[str, str]] = {}
    #: Seconds to wait for a provider (discovery, keys, token, user info) before giving up.
    SOCIAL_HTTP_TIMEOUT: float = _env_int("VRM_SOCIAL_TIMEOUT_SECONDS", 5)
    #: Time allowed to prove that an existing account is yours before linking a provider.
    SOCIAL_PENDING_LINK_TTL = timedelta(hours=1)
    #: The built-in development identity provider at /dev-idp (development only).
    DEV_IDP = False
    #: Benchmark-only routes (``/api/v1/_bench/...``, see bench/brand_api.py); never in a
    #: real deployment.
    BENCH_ENDPOINTS = _env("VRM_BENCH_ENDPOINTS", "0") in {"1", "true", "yes", "on"}

    #: Brand API: lifetime of an access token, and each client's request budget
    #: (Flask-Limiter syntax; "off" turns the limit off, for benchmarks only).
    API_TOKEN_TTL_SECONDS = _env_int("VRM_API_TOKEN_TTL_SECONDS", 3600)
    API_RATE_LIMIT = _env("VRM_API_RATE_LIMIT", "600 per minute;20000 per hour")
    #: "buffered": brands' reads are recorded in batches by a background thread, so a read
    #: stays a read; "inline": in the request's transaction (the tests).
    ACCESS_RECORDS = _env("VRM_ACCESS_RECORDS", "buffered")
    #: Webhook endpoints may use plain http to a loopback host (development and tests).
    WEBHOOK_ALLOW_LOOPBACK_HTTP = False
    #: Brand space: hours an API client's old secret keeps working after a rotation, and
    #: hours a webhook delivery is signed with both the old and the new key (0 to 720).
    CLIENT_SECRET_GRACE_HOURS = _env_int("VRM_CLIENT_SECRET_GRACE_HOURS", 24)
    WEBHOOK_SECRET_OVERLAP_HOURS = _env_int("VRM_WEBHOOK_SECRET_OVERLAP_HOURS", 24)

    #: Background jobs (Huey): ``sqlite:///<file>`` (embedded, one machine),
    #: ``redis://host:port/db`` (production: several workers on several machines), or
    #: ``immediate`` (run in the committing thread; the tests). Default: the Redis of
    #: VRM_REDIS_URL when set, else instance/jobs.sqlite3.
    JOBS_URL: str = _env("VRM_JOBS_URL") or (
        _env("VRM_REDIS_URL") or f"sqlite:///{INSTANCE_PATH / 'jobs.sqlite3'}"
    )
    #: The queue's name in that storage: portals (or test runs) that share one Redis
    #: must each have their own.
    JOBS_QUEUE = _env("VRM_JOBS_QUEUE", "vrm-portal")
    #: Seconds between the scheduler's looks at the schedules below (60 in production;
    #: the tests use 1, so that "every minute" means every second).
    JOBS_TICK_SECONDS = _env_int("VRM_JOBS_TICK_SECONDS", 60)
    #: How long a worker owns a running job before another may take it over, in
    #: seconds; 0 keeps each job kind's own lease (minutes). The tests shorten it.
    JOBS_LEASE_SECONDS = _env_int("VRM_JOBS_LEASE_SECONDS", 0)
    #: Where consent events get their place in the ledger (CONTRIBUTING, "The write
    #: path"): ``worker`` (the job engine's sequencer), ``inline`` (in each change's own
    #: transaction) or ``auto``: inline on SQLite or when VRM_JOBS_URL is ``immediate``,
    #: else worker.
    LEDGER_SEQUENCER = _env("VRM_LEDGER_SEQUENCER", "auto") or "auto"
    #: Events the sequencer integrates per transaction.
    LEDGER_SEQUENCER_BATCH = _env_int("VRM_LEDGER_SEQUENCER_BATCH", 500)
    #: What used to be cron, as five-field cron expressions in UTC ("off" to disable).
    SCHEDULE_EXPIRE_CONSENTS = _env("VRM_SCHEDULE_EXPIRE_CONSENTS", "17 3 * * *")
    SCHEDULE_PROCESS_ERASURES = _env("VRM_SCHEDULE_PROCESS_ERASURES", "7 * * * *")
    SCHEDULE_DELIVER_WEBHOOKS = _env("VRM_SCHEDULE_DELIVER_WEBHOOKS", "* * * * *")
    SCHEDULE_REMINDERS = _env("VRM_SCHEDULE_REMINDERS", "0 8 * * *")
    #: When a new checkpoint of the public log is signed, if the log grew.
    SCHEDULE_CHECKPOINT = _env("VRM_SCHEDULE_CHECKPOINT", "*/5 * * * *")
    #: The daily full verification of the consent ledger (privacy office console).
    SCHEDULE_VERIFY_LEDGER = _env("VRM_SCHEDULE_VERIFY_LEDGER", "41 2 * * *")
    #: When new ledger events are folded into the statistics' daily counts.
    SCHEDULE_STATISTICS_ROLLUP = _env("VRM_SCHEDULE_STATISTICS_ROLLUP", "*/10 * * * *")
    #: A consent that expires within this many days is on "What needs your attention".
    REMINDER_DAYS = _env_int("VRM_REMINDER_DAYS", 30)

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
        for name in ("CLIENT_SECRET_GRACE_HOURS", "WEBHOOK_SECRET_OVERLAP_HOURS"):
            if not 0 <= getattr(self, name) <= 720:
                raise ConfigError(f"VRM_{name} must be between 0 and 720 (hours)")
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
        if not self.RECEIPT_RETIRED_KEYS_FILE:
            key_file = Path(self.RECEIPT_SIGNING_KEY_FILE)
            self.RECEIPT_RETIRED_KEYS_FILE = str(
                key_file.with_name(key_file.name.removesuffix(".pem") + ".retired.json")
            )
        if (
            Path(self.RECEIPT_RETIRED_KEYS_FILE).absolute()
            == Path(self.RECEIPT_SIGNING_KEY_FILE).absolute()
        ):
            raise ConfigError(
                "VRM_RECEIPT_RETIRED_KEYS_FILE must name another file than "
                "VRM_RECEIPT_SIGNING_KEY_FILE (it holds the retired public keys, as JSON)"
            )
        if not 1 <= self.ERASURE_GRACE.days <= 90:
            raise ConfigError("VRM_ERASURE_GRACE_DAYS must be between 1 and 90")
        if not self.JOBS_URL.startswith(("sqlite:///", "redis://", "rediss://", "unix://")) and (
            self.JOBS_URL != "immediate"
        ):
            raise ConfigError(
                "VRM_JOBS_URL must be sqlite:///<file>, redis://host:port/db or immediate"
            )
        if self.LEDGER_SEQUENCER not in {"auto", "inline", "worker"}:
            raise ConfigError(
                "VRM_LEDGER_SEQUENCER must be auto, inline or worker, "
                f"got {self.LEDGER_SEQUENCER!r}"
            )
        if not 1 <= self.JOBS_TICK_SECONDS <= 60 or 60 % self.JOBS_TICK_SECONDS:
            raise ConfigError("VRM_JOBS_TICK_SECONDS must divide 60 (1, 2, 5, 10, 30 or 60)")
        if not 1 <= self.REMINDER_DAYS <= 365:
            raise ConfigError("VRM_REMINDER_DAYS must be between 1 and 365")
        if not self.LOG_SIGNING_KEY_FILE:
            raise ConfigError(
                "VRM_LOG_SIGNING_KEY_FILE must name the PEM file of the public log's signing "
                "key, not the receipt key (openssl genpkey -algorithm ed25519 -out log.pem)"
            )
        for name in (
            "EXPIRE_CONSENTS",
            "PROCESS_ERASURES",
            "DELIVER_WEBHOOKS",
            "REMINDERS",
            "CHECKPOINT",
            "VERIFY_LEDGER",
        ):
            expression = getattr(self, f"SCHEDULE_{name}") or ""
            if expression != "off" and len(expression.split()) != 5:
                raise ConfigError(
                    f"VRM_SCHEDULE_{name} must be a cron expression of five fields "
                    f"(minute hour day month weekday) or 'off', got {expression!r}"
                )
        if self.DEV_IDP and self.ENV_NAME != "development":
            raise ConfigError("VRM_DEV_IDP works only with VRM_ENV=development")
        if self.SOCIAL_HTTP_TIMEOUT <= 0:
            raise ConfigError("VRM_SOCIAL_TIMEOUT_SECONDS must be a positive number of seconds")
        for name in self.SOCIAL_PROVIDERS:
            if not PROVIDER_NAME.match(name):
                raise ConfigError(
                    f"social provider name {name!r}: use lower-case letters, digits and dashes"
                )
        self._validate_operator()

    def _validate_operator(self) -> None:
        """Who runs the portal: every value set, the contact and the link usable."""
        required = {
            "OPERATOR_NAME": 'the legal name of who runs the portal, e.g. "Example Group SAS"',
            "OPERATOR_ADDRESS": "its postal address, on one line",
            "DPO_CONTACT": "its data protection officer's email address or contact page URL",
            "SUPERVISORY_AUTHORITY_NAME": "the data protection authority to complain to, e.g. CNIL",
            "SUPERVISORY_AUTHORITY_URL": "that authority's website, e.g. https://www.cnil.fr/",
        }
        for name, what in required.items():
            if not getattr(self, name):
                raise ConfigError(
                    f"VRM_{name} must be set to {what} (the help page and every page's "
                    "footer show it)"
                )
        contact = self.DPO_CONTACT or ""
        if not (is_web_url(contact) or is_email_address(contact)):
            raise ConfigError(
                "VRM_DPO_CONTACT must be an email address (dpo@example.com) or an http(s) URL "
                f"(https://example.com/privacy/contact), got {contact!r}"
            )
        authority_url = self.SUPERVISORY_AUTHORITY_URL or ""
        if not is_web_url(authority_url):
            raise ConfigError(
                "VRM_SUPERVISORY_AUTHORITY_URL must be an http(s) URL, e.g. "
                f"https://www.cnil.fr/, got {authority_url!r}"
            )

    def as_flask_mapping(self) -> dict[str, Any]:
        names = (n for n in dir(self) if n.isupper())
        mapping = {name: getattr(self, name) for name in names}
        mapping["SQLALCHEMY_DATABASE_URI"] = self.DATABASE_URL
        mapping["RATELIMIT_STORAGE_URI"] = self.REDIS_URL or "memory://"
        mapping["PERMANENT_SESSION_LIFETIME"] = self.REMEMBER_FOR
        mapping["REMEMBER_COOKIE_DURATION"] = self.REMEMBER_FOR
        # SQLite serialises every writer anyway: a sequencer apart would only add waits.
        inline = self.JOBS_URL == "immediate" or self.DATABASE_URL.startswith("sqlite")
        mapping["LEDGER_SEQUENCER_MODE"] = (
            self.LEDGER_SEQUENCER
            if self.LEDGER_SEQUENCER != "auto"
            else "inline"
            if inline
            else "worker"
        )
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
    DEV_IDP = _env("VRM_DEV_IDP", "1") not in {"0", "false", "no", "off"}

    RECEIPT_KEY_AUTOGENERATE = True
    LOG_KEY_AUTOGENERATE = True
    WEBHOOK_ALLOW_LOOPBACK_HTTP = True
    #: A fictional operator for the demo; production must name the real one.
    OPERATOR_NAME = _env("VRM_OPERATOR_NAME", "Demo Brand Group SAS")
    OPERATOR_ADDRESS = _env("VRM_OPERATOR_ADDRESS", "1 place de la Démo, 69002 Lyon, France")
    DPO_CONTACT = _env("VRM_DPO_CONTACT", "dpo@demo.vrm.example")
    SUPERVISORY_AUTHORITY_NAME = _env("VRM_SUPERVISORY_AUTHORITY_NAME", "CNIL")
    SUPERVISORY_AUTHORITY_URL = _env("VRM_SUPERVISORY_AUTHORITY_URL", "https://www.cnil.fr/")

    def validate(self) -> None:
        if not self.SECRET_KEY:
            self.SECRET_KEY = _development_secret_key()
        if not self.RECEIPT_SIGNING_KEY_FILE:
            self.RECEIPT_SIGNING_KEY_FILE = str(INSTANCE_PATH / "receipt_signing_key.pem")
        if not self.LOG_SIGNING_KEY_FILE:
            self.LOG_SIGNING_KEY_FILE = str(INSTANCE_PATH / "log_signing_key.pem")
        super().validate()


class TestingConfig(DevelopmentConfig):
    """Used by the test suite; the fixtures override database and mail settings."""

    ENV_NAME = "testing"
    TESTING = True
    MAIL_BACKEND = "outbox"
    PUBLIC_BASE_URL = "http://localhost"
    SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
    RATELIMIT_STORAGE_URI = "memory://"
    DEV_IDP = False
    ACCESS_RECORDS = "inline"
    JOBS_URL = "immediate"


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
    if _UNREADABLE:
        raise ConfigError(_UNREADABLE[0])
    env_name = _env("VRM_ENV", "production") or "production"
    try:
        config_class = CONFIGS[env_name]
    except KeyError as exc:
        raise ConfigError(
            f"VRM_ENV must be one of {', '.join(sorted(CONFIGS))}, got {env_name!r}"
        ) from exc
    config = config_class()
    config.SOCIAL_PROVIDERS = social_providers_from_env(os.environ)
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    config.validate()
    return config.as_flask_mapping()
