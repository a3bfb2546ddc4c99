"""What a person does around a provider: start in the portal, sign in at the provider's
own page (real HTTP), and come back to the portal with its answer."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import requests
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.identity_provider import PROVIDER
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.social.models import LinkedIdentity


def start(client: FlaskClient, provider: str = PROVIDER, **query: str) -> str:
    """Press "Continue with …": the portal sends the browser to the provider."""
    response = client.get(f"/auth/oauth/{provider}/start", query_string=query)
    assert response.status_code == 302, response.get_data(as_text=True)
    return str(response.location)


def start_link(client: FlaskClient, provider: str = PROVIDER) -> str:
    """Press "Link …" on the sign-in methods page."""
    response = client.get(f"/account/sign-in-methods/{provider}/link")
    assert response.status_code == 302, response.get_data(as_text=True)
    return str(response.location)


def at_provider(
    authorize_url: str,
    *,
    email: str = "sam@example.com",
    verified: bool = True,
    subject: str = "",
    name: str = "",
    cancel: bool = False,
) -> str:
    """Sign in (or cancel) on the provider's own login page; returns where it sends the
    browser back to (the portal's callback, with the answer)."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    fields = {
        unescape(n): unescape(v)
        for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
    }
    form: dict[str, Any] = {
        **fields,
        "email": email,
        "subject": subject,
        "name": name,
        "action": "cancel" if cancel else "approve",
    }
    if verified:
        form["email_verified"] = "yes"
    answer = requests.post(authorize_url, data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


def back_to_portal(client: FlaskClient, location: str) -> Any:
    """Follow the provider's redirect to the portal's callback."""
    parts = urlsplit(location)
    return client.get(parts.path + ("?" + parts.query if parts.query else ""))


def continue_with(client: FlaskClient, provider: str = PROVIDER, **identity: Any) -> Any:
    """The whole round trip; returns the portal's answer to the callback."""
    return back_to_portal(client, at_provider(start(client, provider), **identity))


def identities_of(db_session: Session, account: Account) -> list[tuple[str, str]]:
    db_session.expire_all()
    return [
        (i.provider, i.subject)
        for i in db_session.scalars(
            select(LinkedIdentity)
            .where(LinkedIdentity.account_id == account.id)
            .order_by(LinkedIdentity.id)
        )
    ]


def identity_row(db_session: Session, provider: str, subject: str) -> LinkedIdentity | None:
    db_session.expire_all()
    return db_session.scalars(
        select(LinkedIdentity).where(
            LinkedIdentity.provider == provider, LinkedIdentity.subject == subject
        )
    ).one_or_none()
