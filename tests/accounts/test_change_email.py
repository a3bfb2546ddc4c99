"""Changing the email address: re-authentication, confirmation from the new address while
signed in, a notice to the old one, and no leak of which addresses have accounts."""

from __future__ import annotations

from datetime import timedelta

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
    tokens_of,
)
from tests.conftest import PASSWORD, sign_in, submit
from tests.mailbox import body, link_in
from vrm_portal.clock import utcnow

CONFIRM_PATH = "/account/email/confirm/"


def _ask(client, new_email, password=PASSWORD):
    return submit(client, "/account/email", {"new_email": new_email, "current_password": password})


def _confirm(client, link):
    return submit(client, link, {}, form_page="/account/")


@pytest.fixture
def confirm_link(client, alice, mailbox):
    _ask(client, "alice.new@example.com")
    return link_in(mailbox.wait_for("alice.new@example.com"), CONFIRM_PATH)


def test_wrong_current_password_is_refused_and_sends_nothing(client, alice, db_session, mailbox):
    response = _ask(client, "alice.new@example.com", password="not my password at all")

    assert response.status_code == 422
    assert field_errors(response, "current_password") == ["Your current password is not right."]
    assert tokens_of(db_session, alice, "change_email") == []
    assert mailbox.messages == []


def test_request_mails_a_confirmation_link_to_the_new_address_only(
    client, alice, db_session, mailbox
):
    response = _ask(client, "Alice.New@Example.com")

    assert response.status_code == 302
    assert response.location == "/check-email?reason=change"
    message = mailbox.wait_for("alice.new@example.com")
    assert message["Subject"] == "Confirm your new email address"
    assert link_in(message, CONFIRM_PATH)
    assert mailbox.to("alice@example.com") == []
    assert reloaded(db_session, alice).email == "alice@example.com"


def test_opening_the_confirmation_link_shows_the_new_address_and_changes_nothing(
    client, alice, confirm_link, db_session
):
    page = client.get(confirm_link)

    assert page.status_code == 200
    assert "alice.new@example.com" in text(page)
    assert "Use this address</button>" in text(page)
    assert reloaded(db_session, alice).email == "alice@example.com"


def test_confirming_while_signed_in_switches_the_address(
    client, new_browser, alice, confirm_link, db_session
):
    response = _confirm(client, confirm_link)

    assert response.status_code == 302
    assert response.location == "/account/"
    assert "Your email address is now alice.new@example.com." in text(client.get("/account/"))
    account = reloaded(db_session, alice)
    assert account.email == "alice.new@example.com"
    assert account.email_verified_at is not None
    assert event_kinds(db_session, alice)[-2:] == ["email_changed", "signed_in"]
    assert can_sign_in(new_browser, "alice.new@example.com")
    assert not can_sign_in(new_browser, "alice@example.com")


def test_confirming_signs_out_every_other_session(
    client, new_browser, alice, confirm_link, db_session
):
    phone = new_browser("Phone")
    sign_in(phone, "alice@example.com", remember="y")
    phone_remembered = cookie(phone, REMEMBER_COOKIE)
    laptop = new_browser("Laptop")
    sign_in(laptop, "alice@example.com")
    old_session_cookie = cookie(client, SESSION_COOKIE)

    response = _confirm(client, confirm_link)

    assert response.status_code == 302
    assert not is_signed_in(phone)
    assert not is_signed_in(laptop)
    remembered_only = new_browser()
    remembered_only.set_cookie(REMEMBER_COOKIE, phone_remembered)
    assert not is_signed_in(remembered_only)
    # This browser goes on, in a new session: a copy of its old cookie is worth nothing.
    page = client.get("/account/")
    assert page.status_code == 200
    assert "Your other sessions have been signed out." in text(page)
    copy = new_browser()
    copy.set_cookie(SESSION_COOKIE, old_session_cookie)
    assert not is_signed_in(copy)
    sessions = sessions_of(db_session, alice)
    assert len([s for s in sessions if s.revoked_at is None]) == 1
    assert {s.revoked_reason for s in sessions if s.revoked_at is not None} == {"email_changed"}


def test_old_address_gets_a_notice_once_the_change_is_confirmed(
    client, alice, confirm_link, mailbox
):
    assert mailbox.to("alice@example.com") == []

    _confirm(client, confirm_link)

    notice = mailbox.wait_for("alice@example.com")
    assert notice["Subject"] == "Your email address was changed"
    assert "alice.new@example.com" in body(notice)
    assert CONFIRM_PATH not in body(notice)


def test_link_opened_while_signed_out_asks_to_sign_in_first(
    new_browser, alice, confirm_link, db_session
):
    browser = new_browser()

    response = browser.get(confirm_link)

    assert response.status_code == 302
    assert response.location.startswith("/login?next=")
    assert reloaded(db_session, alice).email == "alice@example.com"
    signed_in = submit(
        browser,
        response.location,
        {"email": "alice@example.com", "password": PASSWORD, "next": confirm_link},
    )
    assert signed_in.location == confirm_link
    assert _confirm(browser, confirm_link).status_code == 302
    assert reloaded(db_session, alice).email == "alice.new@example.com"


def test_address_of_another_account_gets_the_same_answer_and_no_usable_link(
    client, new_browser, alice, make_account, db_session, mailbox
):
    make_account("bob@example.com")
    free = _ask(client, "alice.new@example.com")

    taken = _ask(client, "BOB@example.com")

    assert (taken.status_code, taken.location) == (free.status_code, free.location)
    # Only the token for the free address exists, and it was superseded by nothing.
    tokens = tokens_of(db_session, alice, "change_email")
    assert [t.email for t in tokens] == ["alice.new@example.com"]
    assert reloaded(db_session, alice).email == "alice@example.com"


def test_owner_of_the_address_asked_for_is_warned_by_mail(client, alice, make_account, mailbox):
    make_account("bob@example.com")

    _ask(client, "bob@example.com")

    message = mailbox.wait_for("bob@example.com")
    assert message["Subject"] == "Someone tried to use your address on another account"
    assert CONFIRM_PATH not in body(message)
    assert len(mailbox.messages) == 1


def test_current_address_is_refused_with_a_form_error(client, alice, mailbox):
    response = _ask(client, "ALICE@example.com")

    assert response.status_code == 422
    assert field_errors(response, "new_email") == ["This is already your email address."]
    assert mailbox.messages == []


def test_malformed_new_address_is_refused_with_a_form_error(client, alice, mailbox):
    response = _ask(client, "alice at example dot com")

    assert response.status_code == 422
    assert len(field_errors(response, "new_email")) == 1
    assert mailbox.messages == []


def test_confirming_while_signed_in_as_another_account_is_refused(
    client, new_browser, alice, make_account, confirm_link, db_session
):
    bob = make_account("bob@example.com")
    bobs_browser = new_browser()
    sign_in(bobs_browser, "bob@example.com")

    shown = bobs_browser.get(confirm_link)
    posted = _confirm(bobs_browser, confirm_link)

    assert shown.status_code == posted.status_code == 403
    assert "This link belongs to another account." in text(posted)
    assert reloaded(db_session, alice).email == "alice@example.com"
    assert reloaded(db_session, bob).email == "bob@example.com"
    # The link is still good for the person it was sent to.
    assert _confirm(client, confirm_link).status_code == 302
    assert reloaded(db_session, alice).email == "alice.new@example.com"


def test_reused_confirmation_link_is_refused(client, alice, confirm_link):
    _confirm(client, confirm_link)

    again = _confirm(client, confirm_link)

    assert again.status_code == 410
    assert "This link has already been used." in text(again)


def test_expired_confirmation_link_is_refused_and_changes_nothing(
    client, alice, confirm_link, db_session
):
    (token,) = tokens_of(db_session, alice, "change_email")
    token.expires_at = utcnow() - timedelta(seconds=1)
    db_session.commit()

    response = _confirm(client, confirm_link)

    assert response.status_code == 410
    assert "This link has expired." in text(response)
    assert reloaded(db_session, alice).email == "alice@example.com"


def test_a_newer_request_makes_the_previous_link_unusable(
    client, alice, confirm_link, mailbox, db_session
):
    _ask(client, "alice.other@example.com")
    newer = link_in(mailbox.wait_for("alice.other@example.com"), CONFIRM_PATH)

    assert _confirm(client, confirm_link).status_code == 410
    assert _confirm(client, newer).status_code == 302
    assert reloaded(db_session, alice).email == "alice.other@example.com"


def test_address_taken_before_confirmation_is_refused(
    client, alice, make_account, confirm_link, db_session
):
    make_account("alice.new@example.com")

    response = _confirm(client, confirm_link)

    assert response.status_code == 410
    assert "This address is now used by another account" in text(response)
    assert reloaded(db_session, alice).email == "alice@example.com"


def test_reset_link_mailed_to_the_old_address_stops_working_after_the_change(
    client, new_browser, alice, confirm_link, mailbox
):
    submit(new_browser(), "/password/forgot", {"email": "alice@example.com"})
    reset_link = link_in(mailbox.wait_for("alice@example.com"), "/password/reset/")

    _confirm(client, confirm_link)
    attacker = new_browser()
    response = submit(
        attacker,
        reset_link,
        {"password": "taken over account!", "password_confirm": "taken over account!"},
        form_page="/password/forgot",
    )

    assert response.status_code == 410
    assert can_sign_in(new_browser, "alice.new@example.com", PASSWORD)
    assert not can_sign_in(new_browser, "alice.new@example.com", "taken over account!")
