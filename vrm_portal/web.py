"""Request-side helpers shared by the blueprints: client info, safe redirects, form status."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_request_context, request, url_for
from flask_wtf import FlaskForm

from vrm_portal.accounts.history import ClientInfo

#: The product's name, in page titles, emails and exports.
APP_NAME = "VRM Portal"


def client_info() -> ClientInfo:
    """Where the current request comes from (after ProxyFix, when configured)."""
    return ClientInfo(ip_address=request.remote_addr, user_agent=request.user_agent.string or None)


def public_url(endpoint: str, **values: Any) -> str:
    """The absolute URL of ``endpoint`` at the portal's public address (for emails)."""
    base = str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
    if has_request_context():
        return base + url_for(endpoint, **values)
    # Background jobs have no request: build the path from the URL map alone.
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return base + path


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None: never an open redirect."""
    if not target or len(target) > 2048:
        return None
    if any(ord(ch) < 32 for ch in target) or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def page_arg() -> int:
    """``?page=``, or 1 for anything that is not a plain page number (pages past the last
    are the listing's to handle)."""
    raw = request.args.get("page", "1")
    # isascii(): str.isdigit() also accepts digits int() refuses, such as "²".
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 1


def form_status(form: FlaskForm) -> int:
    """422 for a form sent back with errors, so clients and tests can tell; else 200."""
    return 422 if form.errors or getattr(form, "form_errors", None) else 200
