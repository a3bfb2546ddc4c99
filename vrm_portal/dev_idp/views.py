"""HTTP face of the development identity provider: discovery, JWKS, login page, token,
user info. ``create_blueprint`` serves one ``IdentityProvider``; ``create_idp_app`` runs
it on its own (the tests); ``mount`` adds it to the portal in development."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, redirect, render_template, request
from flask.typing import ResponseReturnValue

from vrm_portal.dev_idp.provider import (
    AuthorizationError,
    DemoIdentity,
    IdentityProvider,
    TokenError,
    subject_for,
)

DEV_CLIENT_ID = "vrm-portal-dev"
DEV_CLIENT_SECRET = "dev-idp-secret-not-for-production"
DEFAULT_EMAIL = "dana@demo.vrm.example"


def create_blueprint(idp: IdentityProvider, *, name: str = "dev_idp") -> Blueprint:
    bp = Blueprint(name, __name__, template_folder="templates")

    @bp.get("/.well-known/openid-configuration")
    def discovery() -> ResponseReturnValue:
        return jsonify(idp.metadata())

    @bp.get("/jwks")
    def jwks() -> ResponseReturnValue:
        return jsonify(idp.jwks())

    @bp.route("/authorize", methods=["GET", "POST"])
    def authorize() -> ResponseReturnValue:
        args = request.args if request.method == "GET" else request.form
        try:
            auth_request = idp.check_authorization_request(args.to_dict())
        except AuthorizationError as exc:
            return render_template(
                "dev_idp/error.html", error=exc.error, description=exc.description
            ), 400
        if request.method == "GET":
            return render_template(
                "dev_idp/login.html",
                fields=auth_request.as_fields(),
                default_email=DEFAULT_EMAIL,
                issuer=idp.issuer,
            )
        if request.form.get("action") == "cancel":
            params = idp.deny(auth_request)
        else:
            email = (request.form.get("email") or "").strip() or DEFAULT_EMAIL
            identity = DemoIdentity(
                subject=(request.form.get("subject") or "").strip() or subject_for(email),
                email=email,
                email_verified=request.form.get("email_verified") == "yes",
                name=(request.form.get("name") or "").strip(),
            )
            params = idp.approve(auth_request, identity)
        if auth_request.response_mode == "form_post":
            return render_template(
                "dev_idp/form_post.html", action=auth_request.redirect_uri, params=params
            )
        return redirect(idp.redirect_location(auth_request, params))

    @bp.post("/token")
    def token() -> ResponseReturnValue:
        auth = request.authorization
        basic = (
            (auth.username or "", auth.password or "") if auth and auth.type == "basic" else None
        )
        try:
            answer = idp.exchange_code(request.form.to_dict(), basic)
        except TokenError as exc:
            return jsonify({"error": exc.error}), exc.status
        response = jsonify(answer)
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.route("/userinfo", methods=["GET", "POST"])
    def userinfo() -> ResponseReturnValue:
        try:
            return jsonify(idp.userinfo(request.headers.get("Authorization")))
        except TokenError as exc:
            return jsonify({"error": exc.error}), exc.status

    return bp


def create_idp_app(idp: IdentityProvider) -> Flask:
    """The provider as an app of its own, served at the root of its issuer URL."""
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(idp))
    return app


def mount(app: Flask, *, url_prefix: str = "/dev-idp") -> Blueprint:
    """Serve the provider inside the portal (development) and register the portal with it."""
    base = str(app.config["PUBLIC_BASE_URL"]).rstrip("/")
    idp = IdentityProvider(issuer=base + url_prefix)
    idp.register_client(DEV_CLIENT_ID, DEV_CLIENT_SECRET, f"{base}/auth/oauth/dev/callback")
    bp = create_blueprint(idp)
    app.register_blueprint(bp, url_prefix=url_prefix)
    return bp


def dev_provider_settings(public_base_url: str) -> dict[str, str]:
    """The portal's settings for the mounted provider: the provider ``dev``."""
    return {
        "preset": "oidc",
        "issuer": public_base_url.rstrip("/") + "/dev-idp",
        "client_id": DEV_CLIENT_ID,
        "client_secret": DEV_CLIENT_SECRET,
        "display_name": "Demo ID (development)",
    }
