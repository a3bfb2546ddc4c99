"""Home, help, the language switcher and the browser's time zone report."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, refresh
from flask_babel import gettext as _
from flask_login import current_user

from vrm_portal.accounts import service
from vrm_portal.accounts.forms import LocaleForm
from vrm_portal.accounts.time_zone import adopt_browser_time_zone
from vrm_portal.extensions import db
from vrm_portal.public.notices import operator_notice
from vrm_portal.time_zones import COOKIE_NAME, is_known_zone
from vrm_portal.web import client_info, safe_next

#: How long a browser's reported time zone is kept (it reports it again when it changes).
TIME_ZONE_COOKIE_DAYS = 365

bp = Blueprint("public", __name__)


@bp.app_context_processor
def inject_operator() -> dict[str, Any]:
    """``operator``, for the footer of every page and the help page."""
    return {"operator": operator_notice(current_app.config)}


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template("public/index.html")


@bp.get("/help")
def help() -> ResponseReturnValue:
    return render_template("public/help.html")


@bp.post("/locale")
def set_locale() -> ResponseReturnValue:
    form = LocaleForm()
    target = safe_next(form.next.data) or url_for("public.index")
    locale = form.locale.data if form.validate_on_submit() else None
    if locale not in service.SUPPORTED_LOCALES:
        flash(_("This language is not available."), "error")
        return redirect(target)
    session["locale"] = locale
    if current_user.is_authenticated:
        service.set_locale(db.session, current_user.account, locale)
    refresh()
    with force_locale(locale):
        flash(_("The language has been changed."), "success")
    return redirect(target)


@bp.post("/time-zone")
def report_time_zone() -> ResponseReturnValue:
    """The browser's time zone, as ``static/time-zone.js`` reads it (CSRF-protected, like
    every POST). Kept for this browser in a cookie; an account without a zone takes it.
    204, or 422 and nothing kept for a name that is not a zone we know."""
    name = request.form.get("time_zone", "")
    if not is_known_zone(name):
        return "", 422
    if current_user.is_authenticated:
        adopt_browser_time_zone(db.session, current_user.account, name, client_info())
    response = Response(status=204)
    response.set_cookie(
        COOKIE_NAME,
        name,
        max_age=TIME_ZONE_COOKIE_DAYS * 24 * 3600,
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        httponly=True,
        samesite="Lax",
    )
    return response
