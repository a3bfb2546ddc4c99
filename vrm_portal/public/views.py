"""Home, help and the language switcher."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, refresh
from flask_babel import gettext as _
from flask_login import current_user

from vrm_portal.accounts import service
from vrm_portal.accounts.forms import LocaleForm
from vrm_portal.extensions import db
from vrm_portal.public.notices import operator_notice
from vrm_portal.web import safe_next

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
