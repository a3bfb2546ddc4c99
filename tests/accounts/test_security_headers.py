"""Headers that protect personal pages (DESIGN §7): CSP, nosniff, referrer policy, no-store,
and cookies that scripts cannot read."""

from __future__ import annotations

import re

import pytest

from tests.accounts.flows import REMEMBER_COOKIE, SESSION_COOKIE, text
from tests.conftest import sign_in

PERSONAL_PAGES = [
    "/account/",
    "/account/sessions",
    "/account/activity",
    "/account/password",
    "/account/email",
]
PUBLIC_FORMS = ["/login", "/register", "/password/forgot"]


@pytest.fixture
def signed_in_client(client, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    return client


@pytest.mark.parametrize("path", PERSONAL_PAGES + PUBLIC_FORMS)
def test_pages_are_never_stored_by_caches(signed_in_client, new_browser, path):
    browser = signed_in_client if path.startswith("/account/") else new_browser()

    response = browser.get(path)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", PERSONAL_PAGES + PUBLIC_FORMS)
def test_pages_carry_a_strict_content_security_policy(signed_in_client, new_browser, path):
    browser = signed_in_client if path.startswith("/account/") else new_browser()

    response = browser.get(path)

    policy = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in {"same-origin", "no-referrer", "strict-origin"}
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", PERSONAL_PAGES + PUBLIC_FORMS)
def test_pages_have_no_inline_script_or_style(signed_in_client, new_browser, path):
    browser = signed_in_client if path.startswith("/account/") else new_browser()

    page = text(browser.get(path))

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert not re.search(r"\son[a-z]+\s*=", page)
    assert not re.search(r"\sstyle\s*=", page)


def test_error_pages_carry_the_same_headers(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_session_and_remember_cookies_are_http_only_and_same_site_lax(client, make_account):
    make_account("alice@example.com")

    response = sign_in(client, "alice@example.com", remember="y")

    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    for name in (SESSION_COOKIE, REMEMBER_COOKIE):
        attributes = [a.strip().lower() for a in cookies[name].split(";")]
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
