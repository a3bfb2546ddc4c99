"""VRM Portal: consumers in charge of their relationship with brands."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_babel import get_locale, lazy_gettext
from werkzeug.middleware.proxy_fix import ProxyFix

from config import INSTANCE_PATH, PROJECT_ROOT, ConfigError, load_config
from vrm_portal import admin, cli, errors, log_redaction, security_headers
from vrm_portal.accounts import (
    auth_views,
    consumer_two_factor_views,
    identity,
    passwords,
    profile_views,
    second_step_views,
    settings_views,
    step_up_views,
    two_factor_views,
)
from vrm_portal.accounts.passkeys import views as passkeys_views
from vrm_portal.accounts.social import client as social_client
from vrm_portal.accounts.social import providers as social_providers
from vrm_portal.accounts.social import views as social_views
from vrm_portal.api import oauth as api_oauth
from vrm_portal.api import views as api_views
from vrm_portal.brand_space import views as brand_space_views
from vrm_portal.consent import gpc, signing
from vrm_portal.consent import views as consent_views
from vrm_portal.dev_idp import views as dev_idp
from vrm_portal.extensions import babel, csrf, limiter, login_manager
from vrm_portal.extensions import db as database
from vrm_portal.i18n import LOCALE_NAMES, select_locale
from vrm_portal.interests import views as interests_views
from vrm_portal.jobs import engine as job_engine
from vrm_portal.log import consumer_views as log_consumer_views
from vrm_portal.log import signing as log_signing
from vrm_portal.log import views as log_views
from vrm_portal.mydata import views as mydata_views
from vrm_portal.privacy_office import console as privacy_office_console
from vrm_portal.public import health
from vrm_portal.public import views as public_views
from vrm_portal.reminders import views as reminders_views
from vrm_portal.requests import export_views
from vrm_portal.requests import views as erasure_views
from vrm_portal.time_zones import (
    current_zone_name,
    format_moment,
    select_time_zone,
    time_zone_detection,
    zone_label,
)
from vrm_portal.web import (
    APP_NAME,
    BoundedIntConverter,
    PrintableConverter,
    keep_staff_in_their_console,
    refuse_json_bodies,
)


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the application: settings, extensions, blueprints, commands, error pages."""
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_PATH),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.url_map.converters.update(
        int=BoundedIntConverter, default=PrintableConverter, string=PrintableConverter
    )
    app.config.from_mapping(load_config(overrides))
    configure_logging(app)
    configure_extensions(app)
    configure_blueprints(app)
    log_redaction.redact_token_routes(app.url_map)
    configure_templates(app)
    errors.init_app(app)
    app.before_request(refuse_json_bodies)
    app.before_request(keep_staff_in_their_console)
    security_headers.init_app(app)
    if app.config["PROXY_HOPS"]:
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    return app


def configure_logging(app: Flask) -> None:
    """INFO to stderr in production; in every environment, no secret link and no email
    address in any log line (``log_redaction``)."""
    if not app.debug and not app.testing:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    log_redaction.install(app)


def configure_extensions(app: Flask) -> None:
    database.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_time_zone)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(identity.load_user)
    login_manager.login_message = lazy_gettext("Please sign in to see this page.")
    signing.init_app(app)
    log_signing.init_app(app)
    job_engine.init_app(app)
    gpc.init_app(app)
    argon2 = app.config.get("ARGON2_PARAMETERS")
    if argon2:
        passwords.configure(**argon2)


def configure_blueprints(app: Flask) -> None:
    app.register_blueprint(public_views.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(settings_views.bp)
    app.register_blueprint(profile_views.bp)
    app.register_blueprint(two_factor_views.bp)
    app.register_blueprint(second_step_views.bp)
    app.register_blueprint(step_up_views.bp)
    app.register_blueprint(consumer_two_factor_views.bp)
    app.register_blueprint(passkeys_views.bp)
    app.register_blueprint(consent_views.bp)
    app.register_blueprint(consent_views.wellknown)
    app.register_blueprint(interests_views.bp)
    app.register_blueprint(mydata_views.bp)
    app.register_blueprint(export_views.bp)
    app.register_blueprint(erasure_views.bp)
    app.register_blueprint(erasure_views.farewell_bp)
    app.register_blueprint(reminders_views.bp)
    app.register_blueprint(social_views.bp)
    api_oauth.init_app(app)
    app.register_blueprint(api_views.bp)
    app.register_blueprint(log_views.bp)
    csrf.exempt(log_views.bp)
    app.register_blueprint(log_consumer_views.bp)
    app.register_blueprint(privacy_office_console.bp)
    app.register_blueprint(cli.bp)
    admin.init_app(app)
    app.register_blueprint(brand_space_views.bp)
    limiter.exempt(health.bp)
    if app.config["BENCH_ENDPOINTS"]:
        # The constant-response baseline of bench/brand_api.py; off unless
        # VRM_BENCH_ENDPOINTS is set.
        from vrm_portal.api.bench_endpoint import bench_bp

        app.register_blueprint(bench_bp)
        limiter.exempt(bench_bp)
    configure_social_sign_in(app)


def configure_social_sign_in(app: Flask) -> None:
    """The configured providers; in development also the built-in provider ``dev``.

    Nothing is fetched from the providers here: a provider that is down must not stop
    the portal. Their metadata is loaded at the first sign-in.
    """
    settings = dict(app.config["SOCIAL_PROVIDERS"])
    if app.config["DEV_IDP"]:
        if "dev" in settings:
            raise ConfigError("the provider name 'dev' is the development provider's")
        dev_bp = dev_idp.mount(app)
        csrf.exempt(dev_bp)
        limiter.exempt(dev_bp)
        settings["dev"] = dev_idp.dev_provider_settings(app.config["PUBLIC_BASE_URL"])
    social_client.init_app(app, social_providers.build_providers(settings))


def configure_templates(app: Flask) -> None:
    # Every time shown names its zone (Flask-Babel's own filter does not).
    app.jinja_env.filters["datetimeformat"] = format_moment
    app.jinja_env.filters["zone_label"] = zone_label

    @app.context_processor
    def inject_globals() -> dict[str, Any]:
        return {
            "app_name": APP_NAME,
            "current_locale": str(get_locale() or "en"),
            "available_locales": LOCALE_NAMES,
            "current_time_zone": current_zone_name(),
            "time_zone_detection": time_zone_detection(),
        }
