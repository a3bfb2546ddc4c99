"""Signing in: generic errors, unverified accounts, session rotation, safe redirects."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.accounts.flows import (
    GENERIC_LOGIN_ERROR,
    REMEMBER_COOKIE,
    SESSION_COOKIE,
    account_by_email,
    cookie,
    error_summary,
    event_kinds,
    is_signed_in,
    register,
    session_content,
    sessions_of,
    text,
)
from tests.conftest import PASSWORD, sign_in, submit
from tests.mailbox import link_in

UNVERIFIED_MESSAGE = "Your email address is not confirmed yet."


def _attempt(client, email, password, **extra):
    return submit(client, "/login", {"email": email, "password": password, **extra})


def test_right_credentials_sign_in_and_land_on_the_account(client, make_account):
    make_account("alice@example.com")

    response = _attempt(client, "alice@example.com", PASSWORD)

    assert response.status_code == 302
    assert response.location == "/account/"
    page = client.get("/account/")
    assert page.status_code == 200
    assert "alice@example.com" in text(page)
    assert "You are signed in." in text(page)


def test_sign_in_accepts_the_address_in_any_case_and_with_spaces(client, make_account):
    make_account("alice@example.com")

    response = _attempt(client, "  ALICE@Example.com ", PASSWORD)

    assert response.status_code == 302
    assert is_signed_in(client)


def test_unknown_email_and_wrong_password_get_the_same_message(client, make_account):
    make_account("alice@example.com")

    unknown = _attempt(client, "nobody@example.com", PASSWORD)
    wrong = _attempt(client, "alice@example.com", "not the right password")

    assert unknown.status_code == wrong.status_code == 422
    assert GENERIC_LOGIN_ERROR in error_summary(unknown)
    assert error_summary(unknown) == error_summary(wrong)
    assert not is_signed_in(client)


def test_malformed_email_gets_the_same_generic_message(client, make_account):
    make_account("alice@example.com")

    response = _attempt(client, "not an address", PASSWORD)

    assert response.status_code == 422
    assert GENERIC_LOGIN_ERROR in error_summary(response)


def test_wrong_password_keeps_the_email_but_not_the_password_in_the_form(client, make_account):
    make_account("alice@example.com")

    response = _attempt(client, "alice@example.com", "not the right password")

    assert 'value="alice@example.com"' in text(response)
    assert "not the right password" not in text(response)


def test_unverified_account_with_right_password_is_not_signed_in_and_gets_a_new_link(
    client, db_session, mailbox
):
    register(client, "carol@example.com")
    mailbox.wait_for("carol@example.com")

    response = _attempt(client, "carol@example.com", PASSWORD)

    assert response.status_code == 422
    assert UNVERIFIED_MESSAGE in text(response)
    assert not is_signed_in(client)
    carol = account_by_email(db_session, "carol@example.com")
    assert [s for s in sessions_of(db_session, carol)] == []
    new_link = link_in(mailbox.wait_for("carol@example.com", count=2), "/verify-email/")
    assert submit(client, new_link, {}).status_code == 302
    # Confirming the address signs the consumer in, with a fresh session.
    assert is_signed_in(client)


def test_unverified_account_with_wrong_password_gets_the_generic_message_and_no_mail(
    client, mailbox
):
    register(client, "carol@example.com")
    mailbox.wait_for("carol@example.com")

    response = _attempt(client, "carol@example.com", "not the right password")

    assert GENERIC_LOGIN_ERROR in error_summary(response)
    assert UNVERIFIED_MESSAGE not in text(response)
    assert len(mailbox.to("carol@example.com")) == 1


def test_failed_attempts_appear_in_the_security_activity(client, make_account, db_session):
    alice = make_account("alice@example.com")
    _attempt(client, "alice@example.com", "first wrong password")
    _attempt(client, "alice@example.com", "second wrong password")

    sign_in(client, "alice@example.com")
    page = client.get("/account/activity")

    assert page.status_code == 200
    assert text(page).count("Failed sign-in attempt") == 2
    assert event_kinds(db_session, alice)[-3:] == ["sign_in_failed", "sign_in_failed", "signed_in"]


def test_sign_in_records_the_device_of_the_new_session(client, make_account, db_session):
    alice = make_account("alice@example.com")
    client.environ_base["HTTP_USER_AGENT"] = "Alice's laptop"

    sign_in(client, "alice@example.com")

    (session,) = sessions_of(db_session, alice)
    assert session.user_agent == "Alice's laptop"
    assert session.ip_address == "127.0.0.1"
    assert session.revoked_at is None
    assert not session.remember


def test_session_cookie_changes_at_sign_in_and_keeps_nothing_from_before(
    app, client, new_browser, make_account
):
    make_account("alice@example.com")
    submit(client, "/locale", {"locale": "en", "next": "/login"}, form_page="/login")
    client.get("/login")
    before = cookie(client, SESSION_COOKIE)
    assert before is not None
    anonymous = session_content(app, before)
    assert {"csrf_token", "locale"} <= set(anonymous)

    sign_in(client, "alice@example.com")

    after = cookie(client, SESSION_COOKIE)
    assert after != before
    signed_in = session_content(app, after)
    assert "_user_id" in signed_in
    assert signed_in["_fresh"] is True
    # Nothing the anonymous visitor's session held is carried over (Flask-Login's own
    # "_fresh" flag is set anew by the sign-in itself), except the language they chose.
    assert signed_in["locale"] == anonymous["locale"]
    assert not (set(anonymous) - {"_fresh", "locale"}) & set(signed_in)
    assert signed_in.get("csrf_token") != anonymous["csrf_token"]
    # The cookie from before sign-in is still an anonymous visitor's.
    thief = new_browser()
    thief.set_cookie(SESSION_COOKIE, before)
    assert not is_signed_in(thief)


def test_session_cookie_does_not_carry_the_account_id(app, client, make_account):
    alice = make_account("alice@example.com")

    sign_in(client, "alice@example.com")

    content = session_content(app, cookie(client, SESSION_COOKIE))
    assert content["_user_id"] != str(alice.id)
    assert len(content["_user_id"]) >= 32


def test_signing_in_again_starts_a_new_session_each_time(client, make_account, db_session):
    alice = make_account("alice@example.com")

    sign_in(client, "alice@example.com")
    first = cookie(client, SESSION_COOKIE)
    submit(client, "/logout", {}, form_page="/account/")
    sign_in(client, "alice@example.com")

    assert cookie(client, SESSION_COOKIE) != first
    sessions = sessions_of(db_session, alice)
    assert len(sessions) == 2
    assert sessions[0].revoked_at is not None
    assert sessions[1].revoked_at is None


def test_local_next_is_honoured_after_sign_in(client, make_account):
    make_account("alice@example.com")

    asked = client.get("/account/sessions")
    assert asked.status_code == 302
    login_page = asked.location
    assert login_page == "/login?next=" + quote("/account/sessions", safe="")
    form = client.get(login_page)
    assert 'name="next" type="hidden" value="/account/sessions"' in text(form)

    response = submit(
        client,
        login_page,
        {"email": "alice@example.com", "password": PASSWORD, "next": "/account/sessions"},
    )

    assert response.location == "/account/sessions"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "https://evil.example/account/",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "/\t/evil.example",
        "http:/evil.example",
        "account/",
    ],
)
def test_foreign_next_is_ignored_after_sign_in(client, make_account, target):
    make_account("alice@example.com")

    form = client.get("/login?next=" + quote(target, safe=""))
    response = _attempt(client, "alice@example.com", PASSWORD, next=target)

    assert 'id="next" name="next" type="hidden" value=""' in text(form)
    assert response.status_code == 302
    assert response.location == "/account/"


def test_signed_in_visitor_on_the_login_page_goes_to_a_local_next_only(client, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    assert client.get("/login?next=/account/activity").location == "/account/activity"
    assert client.get("/login?next=//evil.example").location == "/account/"


def test_remember_me_sets_the_remember_cookie(client, make_account, db_session):
    alice = make_account("alice@example.com")

    sign_in(client, "alice@example.com", remember="y")

    assert cookie(client, REMEMBER_COOKIE)
    (session,) = sessions_of(db_session, alice)
    assert session.remember
    assert session.expires_at - session.created_at == timedelta(days=30)


def test_without_remember_me_there_is_no_remember_cookie(client, make_account, db_session):
    alice = make_account("alice@example.com")

    sign_in(client, "alice@example.com")

    assert cookie(client, REMEMBER_COOKIE) is None
    (session,) = sessions_of(db_session, alice)
    assert not session.remember
    assert session.expires_at - session.created_at == timedelta(hours=12)


def test_login_form_asks_for_the_current_password_in_a_password_input(client):
    page = client.get("/login")

    assert page.status_code == 200
    assert re.search(r'name="password"[^>]*type="password"', text(page))
    assert 'autocomplete="current-password"' in text(page)
