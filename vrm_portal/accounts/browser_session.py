"""Starting a signed-in browser session: always a new server-side session, and for
staff only after the second factor."""

from __future__ import annotations

import secrets
import time

from flask import current_app, redirect, session, url_for
from flask_login import login_user
from werkzeug.wrappers import Response

from vrm_portal.accounts import auth_sessions, device_cookies
from vrm_portal.accounts.identity import SignedInUser
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.second_factor import second_step_endpoint
from vrm_portal.extensions import db
from vrm_portal.web import client_info

PENDING_KEY = "pending_sign_in"
#: Time allowed between the password step and the code step.
PENDING_SECONDS = 300
#: Session keys of pending social sign-in round trips (see accounts/social/client.py).
ROUND_TRIP_PREFIX = "_state_"


def begin_second_factor(account: Account, *, remember: bool, next_url: str | None) -> Response:
    """After a correct password: hold the sign-in until the code step succeeds.

    Each pending sign-in has its own random ``id``: an authenticator enrolment started
    during it belongs to it alone (see ``two_factor.Enrolment``).
    """
    session.clear()
    session[PENDING_KEY] = {
        "id": secrets.token_urlsafe(16),
        "account_id": account.id,
        "remember": remember,
        "next": next_url or "",
        "since": int(time.time()),
    }
    return redirect(url_for(second_step_endpoint(db.session, account)))


def sign_in(account: Account, *, remember: bool) -> None:
    """Start a brand-new session for ``account``: nothing from before sign-in survives.

    The browser also gets a device cookie for the account, so that its later password
    attempts count on its own budget (see ``device_cookies``).
    """
    config = current_app.config
    lifetime = config["REMEMBER_FOR"] if remember else config["SESSION_ABSOLUTE"]
    auth_session, token = auth_sessions.start_session(
        db.session, account, remember=remember, lifetime=lifetime, client=client_info()
    )
    chosen_locale = session.get("locale")
    # Provider round trips started in other tabs (Authlib keeps each under its state)
    # carry no privilege and may still finish.
    round_trips = {k: v for k, v in session.items() if k.startswith(ROUND_TRIP_PREFIX)}
    session.clear()
    session.update(round_trips)
    if chosen_locale:
        session["locale"] = chosen_locale
    login_user(SignedInUser(account, auth_session, token), remember=remember, duration=lifetime)
    device_cookies.remember_device(account)
