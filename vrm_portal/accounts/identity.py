"""Flask-Login glue: the signed-in user is an account seen through one server-side session.

``get_id()`` returns the session token, not the account id (Flask-Login's "alternative
token"), so revoking the session row signs the browser out, remember-me cookie included.
"""

from __future__ import annotations

from flask import current_app
from flask_login import UserMixin

from vrm_portal.accounts import auth_sessions
from vrm_portal.accounts.models import Account, AuthSession
from vrm_portal.extensions import db


class SignedInUser(UserMixin):  # type: ignore[misc]
    def __init__(self, account: Account, auth_session: AuthSession, token: str) -> None:
        self.account = account
        self.auth_session = auth_session
        self._token = token

    def get_id(self) -> str:
        return self._token

    @property
    def email(self) -> str:
        return self.account.email

    @property
    def is_staff(self) -> bool:
        return self.account.is_staff


def load_user(token: str) -> SignedInUser | None:
    auth_session = auth_sessions.resume_session(
        db.session, token, idle_timeout=current_app.config["SESSION_IDLE"]
    )
    if auth_session is None:
        return None
    return SignedInUser(auth_session.account, auth_session, token)
