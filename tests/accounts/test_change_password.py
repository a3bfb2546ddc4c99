"""Changing the password: re-authentication, other sessions ended, a notice by mail."""

from __future__ import annotations

import pytest

from tests.accounts.flows import (
    REMEMBER_COOKIE,
    SESSION_COOKIE,
    can_sign_in,
    cookie,
    event_kinds,
    field_errors,
    is_signed_in,
    reloaded,
    sessions_of,
    text,
)
from tests.conftest import PASSWORD, sign_in, submit
from tests.mailbox import link_in

NEW_PASSWORD = "a fresh passphrase for alice"


def _change(client, current=PASSWORD, new=NEW_PASSWORD, confirm=None):
    return submit(
        client,
        "/account/password",
        {
            "current_password": current,
            "new_password": new,
            "new_password_confirm": confirm or new,
        },
    )


def test_wrong_current_password_is_refused_and_nothing_changes(
    client, new_browser, alice, db_session, mailbox
):
    phone = new_browser()
    sign_in(phone, "alice@example.com")
    hash_before = alice.password_hash

    response = _change(client, current="not my password at all")

    assert response.status_code == 422
    assert field_errors(response, "current_password") == ["Your current password is not right."]
    assert reloaded(db_session, alice).password_hash == hash_before
    assert is_signed_in(phone)
    assert mailbox.to("alice@example.com") == []
    assert can_sign_in(new_browser, "alice@example.com", PASSWORD)


def test_change_ends_every_other_session_and_keeps_this_browser_signed_in(
    client, new_browser, alice, db_session
):
    phone = new_browser()
    sign_in(phone, "alice@example.com", remember="y")
    phone_remembered = cookie(phone, REMEMBER_COOKIE)

    response = _change(client)

    assert response.status_code == 302
    assert response.location == "/account/"
    page = client.get("/account/")
    assert page.status_code == 200
    assert "Your password has been changed." in text(page)
    assert "Your other sessions have been signed out." in text(page)
    assert not is_signed_in(phone)
    thief = new_browser()
    thief.set_cookie(REMEMBER_COOKIE, phone_remembered)
    assert not is_signed_in(thief)
    live = [s for s in sessions_of(db_session, alice) if s.revoked_at is None]
    assert len(live) == 1


def test_change_starts_a_new_session_for_this_browser(client, new_browser, alice, db_session):
    old_cookie = cookie(client, SESSION_COOKIE)

    _change(client)

    assert cookie(client, SESSION_COOKIE) != old_cookie
    copy = new_browser()
    copy.set_cookie(SESSION_COOKIE, old_cookie)
    assert not is_signed_in(copy)
    assert is_signed_in(client)


def test_change_keeps_a_remembered_browser_remembered(client, new_browser, make_account):
    make_account("bob@example.com")
    sign_in(client, "bob@example.com", remember="y")
    old_remembered = cookie(client, REMEMBER_COOKIE)

    submit(
        client,
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
    )

    new_remembered = cookie(client, REMEMBER_COOKIE)
    assert new_remembered
    assert new_remembered != old_remembered
    remembered_only = new_browser()
    remembered_only.set_cookie(REMEMBER_COOKIE, new_remembered)
    assert is_signed_in(remembered_only)
    stale = new_browser()
    stale.set_cookie(REMEMBER_COOKIE, old_remembered)
    assert not is_signed_in(stale)


def test_new_password_works_and_the_old_one_no_longer_does(client, new_browser, alice):
    _change(client)

    assert can_sign_in(new_browser, "alice@example.com", NEW_PASSWORD)
    assert not can_sign_in(new_browser, "alice@example.com", PASSWORD)


def test_change_mails_a_password_changed_notice(client, alice, mailbox, db_session):
    _change(client)

    message = mailbox.wait_for("alice@example.com")
    assert message["Subject"] == "Your password was changed"
    assert link_in(message, "/password/forgot")
    assert "password_changed" in event_kinds(db_session, alice)
    assert "Password changed" in text(client.get("/account/activity"))


@pytest.mark.parametrize(
    ("new", "confirm", "field", "message"),
    [
        ("too short", None, "new_password", "Use at least 12 characters."),
        ("x" * 129, None, "new_password", "Use at most 128 characters."),
        (
            "ALICE@example.com",
            None,
            "new_password",
            "Your password must not be your email address.",
        ),
        (
            NEW_PASSWORD,
            NEW_PASSWORD + "?",
            "new_password_confirm",
            "The two passwords are not the same.",
        ),
    ],
)
def test_refused_new_password_changes_nothing(
    client, new_browser, alice, db_session, mailbox, new, confirm, field, message
):
    hash_before = alice.password_hash

    response = _change(client, new=new, confirm=confirm)

    assert response.status_code == 422
    assert field_errors(response, field) == [message]
    assert reloaded(db_session, alice).password_hash == hash_before
    assert mailbox.to("alice@example.com") == []


def test_change_password_page_needs_sign_in(new_browser):
    response = new_browser().get("/account/password")

    assert response.status_code == 302
    assert response.location == "/login?next=%2Faccount%2Fpassword"


def test_new_password_built_from_the_email_address_is_refused(client, alice, db_session):
    hash_before = alice.password_hash

    response = _change(client, new="alice@example.com2026")

    assert response.status_code == 422
    (message,) = field_errors(response, "new_password")
    assert message.startswith("This password is too easy to guess")
    assert reloaded(db_session, alice).password_hash == hash_before
