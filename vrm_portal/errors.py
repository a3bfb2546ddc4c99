"""One place that turns errors into pages (HTML) or problem details (JSON, RFC 9457).

When the database cannot be reached (restarting, failing over, connections dropped), a
request answers ``503`` with ``Retry-After``: a plain page that touches no database (no
navigation for the signed-in user, whom we cannot load), or problem details on the API,
never a 500 and never a trace. The pool's connections are checked before use
(``pool_pre_ping``, ``db.py``), so the first request after the database is back succeeds.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, jsonify, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from vrm_portal.extensions import db, limiter

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait when the database is unreachable.
UNAVAILABLE_RETRY_AFTER = 5


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


def database_unavailable(error: BaseException | None) -> bool:
    """``error`` (or what caused it) says the database cannot be reached now: a refused or
    dropped connection, a server shutting down or starting up, a transaction that must be
    retried, no free connection in the pool. Not a bug in the request: it can be retried."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, sa_exc.OperationalError | sa_exc.TimeoutError):
            return True
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.PendingRollbackError) and database_unavailable(
            error.__context__
        ):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def _discard_session() -> None:
    """Drop the request's session without raising: its connection may be gone."""
    g.pop("vrm_after_commit", None)
    session = g.pop("vrm_db_session", None)
    if session is None:
        return
    for step in (session.rollback, session.close):
        try:
            step()
        except Exception:  # the connection is broken: the pool discards it
            log.debug("discarding a session after a database error", exc_info=True)


def render_unavailable(error: BaseException) -> ResponseReturnValue:
    """503 with ``Retry-After``: a page that needs no database, or problem details."""
    _discard_session()
    # Nothing of this answer may need the database, and the signed-in user (whose locale
    # picks the language) cannot be loaded: answer as to a visitor.
    g._login_user = AnonymousUserMixin()
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.path,
        str(error).splitlines()[0][:300] if str(error) else type(error).__name__,
    )
    headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER), "Cache-Control": "no-store"}
    title = _("Temporarily unavailable")
    detail = _(
        "The portal cannot reach its database right now. Please try again in a few "
        "seconds. If you were making a change, check on the page whether it was saved."
    )
    if _wants_json():
        response: Response = jsonify(
            {"type": "about:blank", "title": title, "status": 503, "detail": detail}
        )
        response.status_code = 503
        response.mimetype = "application/problem+json"
        response.headers.update(headers)
        return response
    try:
        html = render_template(
            "errors/unavailable.html",
            title=title,
            description=detail,
            retry_after_seconds=UNAVAILABLE_RETRY_AFTER,
        )
    except Exception:
        log.exception("could not render the unavailable page")
        return f"{title}\n\n{detail}\n", 503, headers | {"Content-Type": "text/plain"}
    return html, 503, headers


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
        # An error raised outside the view (the commit of after_request) reaches here
        # as a 500 wrapping it.
        original = getattr(error, "original_exception", None)
        if code == 500 and database_unavailable(original):
            assert original is not None
            return render_unavailable(original)
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
        if database_unavailable(error):
            return render_unavailable(error)
        db.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(InternalServerError.code)
