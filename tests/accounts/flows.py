"""Steps the accounts tests share: what a person does in a browser, and what the data says."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD, submit
from vrm_portal.accounts.models import Account, AccountEvent, AuthSession, EmailToken

SESSION_COOKIE = "vrm_session"
REMEMBER_COOKIE = "vrm_remember"

GENERIC_LOGIN_ERROR = "The email address or the password is not right."
CSRF_MESSAGE = "did not come from this site"


def register(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    confirm: str | None = None,
) -> Any:
    """Fill in and send the registration form."""
    return submit(
        client,
        "/register",
        {"email": email, "password": password, "password_confirm": confirm or password},
    )


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def field_errors(response: Any, field_id: str) -> list[str]:
    """The messages shown next to one form field (not those of the error summary)."""
    block = re.search(
        rf'<div class="field-error" id="{re.escape(field_id)}-error">(.*?)</div>',
        text(response),
        re.S,
    )
    if block is None:
        return []
    return [
        re.sub(r"<[^>]+>", "", p).replace("Error:", "", 1).strip()
        for p in re.findall(r"<p>(.*?)</p>", block.group(1), re.S)
    ]


def error_summary(response: Any) -> str:
    """The error summary at the top of a form page, as HTML ('' when there is none)."""
    match = re.search(r'<div class="error-summary".*?</ul>', text(response), re.S)
    return match.group(0) if match else ""


def is_signed_in(client: FlaskClient) -> bool:
    """Whether the browser reaches its account pages (a signed-out one is sent to /login).

    The sessions page, not the overview: staff are sent from the overview to their console.
    """
    response = client.get("/account/sessions")
    if response.status_code == 200:
        return True
    assert response.status_code == 302, response.status_code
    assert response.location.startswith("/login")
    return False


def cookie(client: FlaskClient, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found is not None else None


def browser_with_cookie(client: FlaskClient, name: str, value: str) -> FlaskClient:
    """``client`` holding a copy of someone's cookie (as a thief or a second tab would)."""
    client.set_cookie(name, value)
    return client


def session_content(app: Flask, value: str) -> dict[str, Any]:
    """The Flask session stored in a ``vrm_session`` cookie value."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    content: dict[str, Any] = serializer.loads(value)
    return content


def account_by_email(db_session: Session, email: str) -> Account | None:
    db_session.expire_all()
    return db_session.scalars(select(Account).where(Account.email == email)).one_or_none()


def count_accounts(db_session: Session) -> int:
    db_session.expire_all()
    return len(db_session.scalars(select(Account.id)).all())


def reloaded(db_session: Session, account: Account) -> Account:
    """``account`` as the database holds it now (after the app's requests)."""
    db_session.expire_all()
    fresh = db_session.get(Account, account.id)
    assert fresh is not None
    return fresh


def sessions_of(db_session: Session, account: Account) -> list[AuthSession]:
    db_session.expire_all()
    return list(
        db_session.scalars(
            select(AuthSession).where(AuthSession.account_id == account.id).order_by(AuthSession.id)
        )
    )


def tokens_of(db_session: Session, account: Account, purpose: str) -> list[EmailToken]:
    db_session.expire_all()
    return list(
        db_session.scalars(
            select(EmailToken)
            .where(EmailToken.account_id == account.id, EmailToken.purpose == purpose)
            .order_by(EmailToken.id)
        )
    )


def event_kinds(db_session: Session, account: Account) -> list[str]:
    """The account's security history, oldest first."""
    db_session.expire_all()
    return list(
        db_session.scalars(
            select(AccountEvent.kind)
            .where(AccountEvent.account_id == account.id)
            .order_by(AccountEvent.id)
        )
    )


def revoke_buttons(response: Any) -> list[str]:
    """The "Sign out this session" form targets listed on the Sessions page."""
    return re.findall(r'action="(/account/sessions/\d+/revoke)"', text(response))


def can_sign_in(new_browser: Any, email: str, password: str = PASSWORD) -> bool:
    """Whether a fresh browser gets in with these credentials."""
    response = submit(new_browser(), "/login", {"email": email, "password": password})
    return response.status_code == 302
