"""Request-side glue of the consent pages: the current change, the signal, the locale."""

from __future__ import annotations

from flask import request
from flask_babel import get_locale

from vrm_portal.clock import utcnow
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change


def page_locale() -> str:
    return str(get_locale() or "en")


def gpc_signal() -> bool:
    """The browser sends Global Privacy Control (``Sec-GPC: 1``)."""
    return request.headers.get("Sec-GPC", "").strip() == "1"


def change_from_request(method: CollectionMethod = CollectionMethod.PORTAL) -> Change:
    return Change(method, page_locale(), utcnow(), gpc_signal=gpc_signal())
