"""One place that turns errors into pages (HTML) or problem details (JSON, RFC 9457)."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, jsonify, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from vrm_portal.extensions import db, limiter

log = logging.getLogger(__name__)


def _texts(code: int) -> tuple[str, str]:
    texts = {
        400: (_("Bad request"), _("The request could not be understood. Go back and try again.")),
        403: (_("Not allowed"), _("You do not have access to this page.")),
        404: (_("Page not found"), _("Check the address, or go back to the home page.")),
        405: (_("Not allowed"), _("This page cannot be used that way.")),
        410: (_("Link no longer valid"), _("This link has expired or was already used.")),
        413: (_("Too much data"), _("What you sent is too large. Send less and try again.")),
        415: (_("Not a form"), _("This page takes a form. Go back and send it from the page.")),
        429: (
            _("Too many attempts"),
            _("For your security, this action is paused for a moment."),
        ),
    }
    return texts.get(
        code,
        (
            _("Something went wrong"),
            _("We could not complete your request. Nothing was changed. Please try again."),
        ),
    )


def _wants_json() -> bool:
    if request.path.startswith(("/api/", "/oauth/")) or request.path in ("/healthz", "/readyz"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not request.accept_mimetypes.accept_html


def _retry_after_seconds() -> int | None:
    current = limiter.current_limit
    if current is None:
        return None
    return max(1, int(current.reset_at - time.time()))


def render_error(code: int, description: str | None = None) -> ResponseReturnValue:
    title, default_description = _texts(code)
    retry_after = _retry_after_seconds() if code == 429 else None
    if _wants_json():
        body = {"type": "about:blank", "title": title, "status": code}
        body["detail"] = description or default_description
        response: Response = jsonify(body)
        response.status_code = code
        response.mimetype = "application/problem+json"
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response
    html = render_template(
        "errors/error.html",
        code=code,
        title=title,
        description=description or default_description,
        retry_after_seconds=retry_after,
    )
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return html, code, headers


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(_error: CSRFError) -> ResponseReturnValue:
        return render_error(
            400,
            _(
                "This form has expired or did not come from this site, so nothing was "
                "changed. Go back, reload the page and try again."
            ),
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        code = error.code or 500
        if code >= 500:
            db.rollback()
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            # RFC 9110: a 405 names the methods the resource does take.
            response = make_response(render_error(code))
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
            return response
        return render_error(code)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> ResponseReturnValue:
        db.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(InternalServerError.code)
