"""Interface language: the account's choice, else the visitor's choice, else the browser's."""

from __future__ import annotations

from flask import has_request_context, request, session
from flask_login import current_user

SUPPORTED_LOCALES = ("en", "fr")
LOCALE_NAMES = (("en", "English"), ("fr", "Français"))


def select_locale() -> str:
    if not has_request_context():
        return "en"
    if current_user and current_user.is_authenticated and current_user.account.locale:
        return str(current_user.account.locale)
    chosen = session.get("locale")
    if chosen in SUPPORTED_LOCALES:
        return str(chosen)
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or "en"
