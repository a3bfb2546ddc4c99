"""Every form needs the CSRF token of the visitor's own session; without it, nothing changes."""

from __future__ import annotations

import pytest

from tests.accounts.flows import (
    CSRF_MESSAGE,
    count_accounts,
    is_signed_in,
    reloaded,
    text,
)
from tests.conftest import PASSWORD, csrf_token, sign_in

NEW_PASSWORD = "a fresh passphrase for alice"


@pytest.fixture(params=["missing", "garbage", "another_visitors"])
def bad_token(request, new_browser):
    """No token, a made-up one, or a real token that belongs to another browser."""
    if request.param == "missing":
        return {}
    if request.param == "garbage":
        return {"csrf_token": "IjAwMDAwMDAwMDAi.not.a-real-token"}
    return {"csrf_token": csrf_token(new_browser(), "/login")}


def _assert_refused(response):
    assert response.status_code == 400
    assert CSRF_MESSAGE in text(response)
    assert "nothing was changed" in text(response)


def test_registration_without_a_valid_token_creates_nothing(client, db_session, mailbox, bad_token):
    client.get("/register")
    before = count_accounts(db_session)

    response = client.post(
        "/register",
        data={
            "email": "carol@example.com",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            **bad_token,
        },
    )

    _assert_refused(response)
    assert count_accounts(db_session) == before
    assert mailbox.messages == []


def test_sign_in_without_a_valid_token_does_not_sign_in(client, make_account, bad_token):
    make_account("alice@example.com")
    client.get("/login")

    response = client.post(
        "/login", data={"email": "alice@example.com", "password": PASSWORD, **bad_token}
    )

    _assert_refused(response)
    assert not is_signed_in(client)


def test_sign_out_without_a_valid_token_keeps_the_session(client, make_account, bad_token):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    response = client.post("/logout", data=bad_token)

    _assert_refused(response)
    assert is_signed_in(client)


def test_password_change_without_a_valid_token_changes_nothing(
    client, make_account, db_session, mailbox, bad_token
):
    alice = make_account("alice@example.com")
    hash_before = alice.password_hash
    sign_in(client, "alice@example.com")

    response = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            **bad_token,
        },
    )

    _assert_refused(response)
    assert reloaded(db_session, alice).password_hash == hash_before
    assert mailbox.messages == []
    assert is_signed_in(client)


def test_email_change_without_a_valid_token_sends_nothing(client, make_account, mailbox, bad_token):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    response = client.post(
        "/account/email",
        data={"new_email": "alice.new@example.com", "current_password": PASSWORD, **bad_token},
    )

    _assert_refused(response)
    assert mailbox.messages == []


def test_sign_out_everywhere_without_a_valid_token_keeps_the_other_sessions(
    client, new_browser, make_account, bad_token
):
    make_account("alice@example.com")
    phone = new_browser()
    sign_in(phone, "alice@example.com")
    sign_in(client, "alice@example.com")

    response = client.post("/account/sessions/revoke-others", data=bad_token)

    _assert_refused(response)
    assert is_signed_in(phone)


def test_language_switch_without_a_valid_token_changes_nothing(
    client, make_account, db_session, bad_token
):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    response = client.post("/locale", data={"locale": "fr", **bad_token})

    _assert_refused(response)
    assert reloaded(db_session, alice).locale is None


def test_token_from_before_sign_in_no_longer_works_after_it(client, make_account):
    make_account("alice@example.com")
    anonymous_token = csrf_token(client, "/login")
    sign_in(client, "alice@example.com")

    response = client.post("/logout", data={"csrf_token": anonymous_token})

    _assert_refused(response)
    assert is_signed_in(client)


def test_password_reset_request_without_a_valid_token_sends_nothing(
    client, make_account, mailbox, bad_token
):
    make_account("alice@example.com")
    client.get("/password/forgot")

    response = client.post("/password/forgot", data={"email": "alice@example.com", **bad_token})

    _assert_refused(response)
    assert mailbox.messages == []
