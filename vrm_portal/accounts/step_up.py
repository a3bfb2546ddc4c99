"""Confirming it is you before changing how you sign in (adding or removing a passkey, the
authenticator app, recovery codes).

A sign-in within the last ``WINDOW`` counts; otherwise the "Confirm it is you" page asks
for the password or a passkey (or, without either, a new sign-in with a provider) and
the browser's session remembers the confirmation for ``WINDOW``, for this signed-in
session only.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import redirect, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from vrm_portal.clock import utcnow

WINDOW = timedelta(minutes=10)
_KEY = "access_confirmed"


def recently_confirmed() -> bool:
    """Whether the signed-in person proved it is them within ``WINDOW``."""
    auth_session = current_user.auth_session
    if utcnow() - auth_session.created_at <= WINDOW:
        return True
    held = session.get(_KEY)
    if not isinstance(held, dict) or held.get("session") != auth_session.id:
        return False
    return time.time() - float(held.get("at", 0)) <= WINDOW.total_seconds()


def mark_confirmed() -> None:
    session[_KEY] = {"session": current_user.auth_session.id, "at": int(time.time())}


def confirm_first(next_url: str) -> Response:
    """Send the browser to "Confirm it is you", then back to ``next_url``."""
    return redirect(url_for("step_up.confirm", next=next_url))
