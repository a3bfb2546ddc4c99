"""Forgotten password: the same answer for every address, single-use expiring links,
and a reset that ends every session."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.accounts.flows import (
    account_by_email,
    can_sign_in,
    event_kinds,
    field_errors,
    is_signed_in,
    register,
    reloaded,
    sessions_of,
    text,
    tokens_of,
)
from tests.accounts.social.flows import at_provider, back_to_portal, identities_of, start_link
from tests.conftest import PASSWORD, sign_in, submit
from tests.identity_provider import PROVIDER
from tests.mailbox import link_in
from vrm_portal.clock import utcnow

NEW_PASSWORD = "a fresh passphrase for alice"
#: Where a reset sends the browser: sign in, then review the linked sign-in methods.
METHODS_REVIEW = "/account/sign-in-methods?review=password-reset"
AFTER_RESET = "/login?next=/account/sign-in-methods?review%3Dpassword-reset"
OTHER_PASSWORD = "yet another passphrase here"


def _ask_for_link(client, email):
    return submit(client, "/password/forgot", {"email": email})


def _reset(client, link, password=NEW_PASSWORD, confirm=None):
    """Set a new password through ``link`` (CSRF token from a page that always has one)."""
    return submit(
        client,
        link,
        {"password": password, "password_confirm": confirm or password},
        form_page="/password/forgot",
    )


@pytest.fixture
def alice(make_account):
    """Alice with an account, not signed in (overrides the signed-in one of conftest)."""
    return make_account("alice@example.com")


@pytest.fixture
def reset_link(client, alice, mailbox):
    _ask_for_link(client, "alice@example.com")
    return link_in(mailbox.wait_for("alice@example.com"), "/password/reset/")


def test_request_for_an_unknown_address_answers_like_a_known_one_and_sends_nothing(
    client, new_browser, alice, mailbox
):
    unknown = _ask_for_link(client, "nobody@example.com")
    known = _ask_for_link(new_browser(), "alice@example.com")

    assert unknown.status_code == known.status_code == 302
    assert unknown.location == known.location == "/check-email?reason=reset"
    assert mailbox.to("nobody@example.com") == []
    assert len(mailbox.messages) == 1  # alice's


def test_request_for_a_known_address_mails_a_reset_link(client, alice, mailbox, db_session):
    _ask_for_link(client, "Alice@Example.com")

    message = mailbox.wait_for("alice@example.com")
    assert message["Subject"] == "Choose a new password"
    link = link_in(message, "/password/reset/")
    page = client.get(link)
    assert page.status_code == 200
    assert 'name="password"' in text(page)
    assert "password_reset_requested" in event_kinds(db_session, alice)


def test_malformed_address_on_the_forgot_page_gets_a_form_error(client, mailbox):
    response = _ask_for_link(client, "not an address")

    assert response.status_code == 422
    assert len(field_errors(response, "email")) == 1
    assert mailbox.messages == []


def test_showing_the_reset_form_does_not_use_the_link(client, reset_link):
    client.get(reset_link)
    client.get(reset_link)

    assert _reset(client, reset_link).status_code == 302


def test_reset_sets_the_new_password_and_the_old_one_stops_working(
    client, new_browser, alice, reset_link, db_session
):
    response = _reset(client, reset_link)

    assert response.status_code == 302
    assert response.location == AFTER_RESET
    assert not can_sign_in(new_browser, "alice@example.com", PASSWORD)
    assert can_sign_in(new_browser, "alice@example.com", NEW_PASSWORD)
    assert "password_reset" in event_kinds(db_session, alice)


def test_reset_ends_every_existing_session(client, new_browser, alice, reset_link, db_session):
    phone = new_browser()
    sign_in(phone, "alice@example.com", remember="y")
    laptop = new_browser()
    sign_in(laptop, "alice@example.com")

    _reset(client, reset_link)

    assert not is_signed_in(phone)
    assert not is_signed_in(laptop)
    assert all(s.revoked_reason == "password_reset" for s in sessions_of(db_session, alice))


def test_reset_done_in_a_signed_in_browser_signs_it_out_too(client, new_browser, alice, reset_link):
    sign_in(client, "alice@example.com")

    response = _reset(client, reset_link)

    assert response.location == AFTER_RESET
    assert not is_signed_in(client)


def test_after_a_reset_the_owner_is_taken_to_review_the_linked_sign_in_methods(
    client, new_browser, alice, db_session, mailbox, identity_provider
):
    # Whoever knew the old password may have linked a provider of theirs.
    identity_provider.reset()
    _ask_for_link(client, "alice@example.com")
    link = link_in(mailbox.wait_for("alice@example.com"), "/password/reset/")
    intruder = new_browser()
    sign_in(intruder, "alice@example.com")
    back_to_portal(
        intruder, at_provider(start_link(intruder), email="eve@example.org", subject="eve")
    )
    assert identities_of(db_session, alice) == [(PROVIDER, "eve")]

    response = _reset(client, link)

    assert response.location == AFTER_RESET
    assert not is_signed_in(intruder)
    login_page = client.get(response.location)
    assert "Then check the sign-in methods linked to your account" in text(login_page)
    assert f'name="next" type="hidden" value="{METHODS_REVIEW}"' in text(login_page)
    signed_in = submit(
        client,
        response.location,
        {"email": "alice@example.com", "password": NEW_PASSWORD, "next": METHODS_REVIEW},
    )
    assert signed_in.location == METHODS_REVIEW
    methods = client.get(signed_in.location)
    assert "Your password was reset and every session was signed out." in text(methods)
    unlink = re.findall(r'action="(/account/sign-in-methods/\d+/unlink)"', text(methods))
    assert len(unlink) == 1
    assert submit(client, unlink[0], {}, form_page=METHODS_REVIEW).status_code == 302
    assert identities_of(db_session, alice) == []


def test_reused_reset_link_is_refused_and_changes_nothing(client, new_browser, alice, reset_link):
    assert _reset(client, reset_link, NEW_PASSWORD).status_code == 302

    again = _reset(client, reset_link, OTHER_PASSWORD)
    shown = client.get(reset_link)

    assert again.status_code == 410
    assert "This link has already been used." in text(again)
    assert shown.status_code == 410
    assert 'name="password"' not in text(shown)
    assert can_sign_in(new_browser, "alice@example.com", NEW_PASSWORD)
    assert not can_sign_in(new_browser, "alice@example.com", OTHER_PASSWORD)


def test_expired_reset_link_is_refused_and_changes_nothing(
    client, new_browser, alice, reset_link, db_session
):
    (token,) = tokens_of(db_session, alice, "reset_password")
    token.expires_at = utcnow() - timedelta(seconds=1)
    db_session.commit()

    shown = client.get(reset_link)
    posted = _reset(client, reset_link)

    assert shown.status_code == posted.status_code == 410
    assert "This link has expired." in text(posted)
    assert can_sign_in(new_browser, "alice@example.com", PASSWORD)


def test_reset_link_expires_after_one_hour(client, alice, reset_link, db_session):
    (token,) = tokens_of(db_session, alice, "reset_password")

    assert token.expires_at - token.created_at == timedelta(hours=1)


def test_asking_again_makes_the_previous_link_unusable(
    client, new_browser, alice, reset_link, mailbox
):
    _ask_for_link(client, "alice@example.com")
    newer_link = link_in(mailbox.wait_for("alice@example.com", count=2), "/password/reset/")
    assert newer_link != reset_link

    refused = _reset(client, reset_link, OTHER_PASSWORD)
    accepted = _reset(client, newer_link, NEW_PASSWORD)

    assert refused.status_code == 410
    assert accepted.status_code == 302
    assert can_sign_in(new_browser, "alice@example.com", NEW_PASSWORD)


@pytest.mark.parametrize(
    ("password", "confirm", "field", "message"),
    [
        ("too short", None, "password", "Use at least 12 characters."),
        ("x" * 129, None, "password", "Use at most 128 characters."),
        ("alice@example.com", None, "password", "Your password must not be your email address."),
        (NEW_PASSWORD, OTHER_PASSWORD, "password_confirm", "The two passwords are not the same."),
    ],
)
def test_refused_new_password_keeps_the_link_usable(
    client, new_browser, alice, reset_link, password, confirm, field, message
):
    response = _reset(client, reset_link, password, confirm)

    assert response.status_code == 422
    assert field_errors(response, field) == [message]
    assert can_sign_in(new_browser, "alice@example.com", PASSWORD)
    assert _reset(client, reset_link).status_code == 302


@pytest.mark.parametrize("token", ["not-a-real-token", "x" * 129])
def test_unknown_reset_link_is_not_found(client, token):
    response = client.get(f"/password/reset/{token}")

    assert response.status_code == 404
    assert "This link is not valid." in text(response)


def test_reset_through_the_emailed_link_confirms_an_unverified_address(
    client, new_browser, db_session, mailbox
):
    register(client, "carol@example.com")
    mailbox.wait_for("carol@example.com")
    _ask_for_link(client, "carol@example.com")
    link = link_in(mailbox.wait_for("carol@example.com", count=2), "/password/reset/")

    _reset(client, link)

    carol = account_by_email(db_session, "carol@example.com")
    assert reloaded(db_session, carol).email_verified_at is not None
    assert can_sign_in(new_browser, "carol@example.com", NEW_PASSWORD)
