"""Device cookies (OWASP): a browser that has signed in to an account before keeps its own
budget of password attempts for it, so that strangers who exhaust the address's budget
cannot lock the owner out of password sign-in (see ``password_budget``).

The cookie names the account and a random nonce, signed with the portal's secret key.
It grants no access by itself: it only chooses which counter a sign-in attempt for that
account uses, and a device cookie that keeps failing is locked like an address. It is set
at every successful sign-in: HttpOnly, SameSite=Lax, Secure when the session cookie is,
for a year. Nothing is stored on the server.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import after_this_request, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from vrm_portal.accounts.models import Account

COOKIE_NAME = "vrm_device"
LIFETIME = timedelta(days=365)
_SALT = "vrm-device-cookie"
#: Longer values are not ours: refused before any signature check.
_MAX_LENGTH = 256


@dataclass(frozen=True)
class Device:
    """A browser known to have signed in to ``account_id``; ``nonce`` names its budget."""

    account_id: int
    nonce: str


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_SALT)  # type: ignore[arg-type]


def issue_device_cookie(account: Account) -> str:
    """A new signed cookie value for ``account``, with a fresh nonce."""
    return str(_serializer().dumps({"a": account.id, "n": secrets.token_urlsafe(16)}))


def read_device_cookie(value: str | None) -> Device | None:
    """The device a cookie value names, or None when it is missing, forged or too old."""
    if not value or len(value) > _MAX_LENGTH:
        return None
    try:
        data: Any = _serializer().loads(value, max_age=int(LIFETIME.total_seconds()))
    except BadSignature:  # SignatureExpired included
        return None
    if not isinstance(data, dict):
        return None
    account_id, nonce = data.get("a"), data.get("n")
    if type(account_id) is not int or not isinstance(nonce, str) or not nonce:
        return None
    return Device(account_id, nonce)


def presented_device() -> Device | None:
    """The device cookie of the current request, when it is valid."""
    return read_device_cookie(request.cookies.get(COOKIE_NAME))


def remember_device(account: Account) -> None:
    """Give this browser a new device cookie for ``account`` with the response."""
    value = issue_device_cookie(account)
    secure = bool(current_app.config["SESSION_COOKIE_SECURE"])

    @after_this_request
    def _set_cookie(response: Response) -> Response:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=int(LIFETIME.total_seconds()),
            secure=secure,
            httponly=True,
            samesite="Lax",
        )
        return response
