"""Request-side helpers shared by the blueprints: client info, safe redirects, form status."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, flash, has_request_context, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.routing import IntegerConverter, Map, UnicodeConverter

from vrm_portal.accounts.history import ClientInfo
from vrm_portal.errors import render_error
from vrm_portal.staff_home import home_url

#: The product's name, in page titles, emails and exports.
APP_NAME = "VRM Portal"
#: The largest number an ``<int:…>`` address part may carry: a signed 64-bit integer,
#: what the database stores (a larger one made SQLite's driver overflow: a 500).
MAX_PATH_INT = 2**63 - 1
#: Blueprints that read JSON bodies or parse their own; every other route takes HTML forms.
JSON_BLUEPRINTS = frozenset({"api", "oauth", "log", "bench", "dev_idp"})


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


def refuse_json_bodies() -> None:
    """Before each request: a JSON body sent to a page is refused (415) before its view.

    The pages take HTML forms. Flask-WTF would read a JSON body as the form's data,
    whatever its shape (a number, nested objects), and the fields' checks would fail on
    it with a server error instead of a message.
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or request.blueprint in JSON_BLUEPRINTS:
        return
    if request.routing_exception is not None:
        return  # no such page or method: the routing error (404, 405 with Allow) answers
    if request.is_json:
        abort(415)


#: The consumer's features (consents, interests and plans, my data, export, erasure,
#: attention emails, proofs): a staff account is sent to its console instead.
CONSUMER_BLUEPRINTS = frozenset(
    {"consent", "interests", "mydata", "export", "erasure", "reminders", "proofs"}
)
#: Pages outside those blueprints that are a consumer's home: the front page and the
#: account overview (where every sign-in lands).
CONSUMER_HOMES = frozenset({"public.index", "account.overview"})
#: Public documents inside the consumer blueprints, for anyone.
_PUBLIC_ENDPOINTS = frozenset({"export.schema", "export.versioned_schema"})


def keep_staff_in_their_console() -> ResponseReturnValue | None:
    """Before each request: staff accounts do not use consumer features.

    A signed-in staff member who opens a consumer page (or the front page, or the
    account overview where a sign-in lands) is redirected to their console
    (``staff_home.home_url``). While their role's console does not exist, the consumer
    features answer 403 with a message, and the account overview stays.
    """
    endpoint = request.endpoint or ""
    if request.blueprint not in CONSUMER_BLUEPRINTS and endpoint not in CONSUMER_HOMES:
        return None
    if endpoint in _PUBLIC_ENDPOINTS or not current_user.is_authenticated:
        return None
    account = current_user.account
    if account.staff_role is None:
        return None
    target = home_url(account)
    if target is None:
        if endpoint in CONSUMER_HOMES:
            return None
        return render_error(403, _("Staff accounts do not use the consumer pages."))
    if endpoint not in CONSUMER_HOMES:
        flash(_("Staff accounts do not use the consumer pages: here is your console."), "info")
    return redirect(target)


class BoundedIntConverter(IntegerConverter):
    """``<int:…>``, at most ``MAX_PATH_INT`` unless the rule says otherwise: a larger
    number in an address is a 404 like any unknown id."""

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits, min, MAX_PATH_INT if max is None else max, signed)


class PrintableConverter(UnicodeConverter):
    """``<name>`` (``<string:name>``) without control characters: an address part with a
    NUL or a line break names nothing, and is a 404 (PostgreSQL refuses a NUL in text,
    which made such an address a 500)."""

    def __init__(
        self,
        map: Map,
        minlength: int = 1,
        maxlength: int | None = None,
        length: int | None = None,
    ) -> None:
        super().__init__(map, minlength, maxlength, length)
        self.regex = self.regex.replace("[^/]", r"[^/\x00-\x1f\x7f]", 1)
