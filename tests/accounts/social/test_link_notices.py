"""Whoever links or unlinks a sign-in method, the account's owner hears of it by email,
and the pages that confirm a link say which identity it is: provider, address, subject."""

from __future__ import annotations

import re

from tests.accounts.flows import account_by_email, text
from tests.accounts.social.flows import at_provider, back_to_portal, continue_with, start_link
from tests.conftest import PASSWORD, submit
from tests.identity_provider import PROVIDER
from tests.mailbox import body, link_in

METHODS = "/account/sign-in-methods"


def link(client, provider=PROVIDER, **identity):
    return back_to_portal(client, at_provider(start_link(client, provider), **identity))


def unlink_buttons(response):
    return re.findall(r'action="(/account/sign-in-methods/\d+/unlink)"', text(response))


def assert_names_the_identity(message_or_page: str, provider: str, email: str, subject: str):
    assert provider in message_or_page
    assert email in message_or_page
    assert subject in message_or_page


def test_linking_from_the_settings_emails_the_owner(client, alice, mailbox, idp):
    response = link(client, email="alice.elsewhere@example.org", verified=False, subject="a-77")
    assert response.location == METHODS

    message = mailbox.wait_for("alice@example.com")
    assert message["Subject"] == "Test ID was linked to your account"
    text_of_mail = body(message)
    assert_names_the_identity(text_of_mail, "Test ID", "alice.elsewhere@example.org", "a-77")
    assert "If it was not you" in text_of_mail
    assert link_in(message, METHODS)
    assert link_in(message, "/password/forgot")
    assert mailbox.to("alice.elsewhere@example.org") == []  # the owner, not the provider


def test_unlinking_emails_the_owner(client, alice, mailbox, idp):
    link(client, email="alice.elsewhere@example.org", subject="a-78")
    mailbox.wait_for("alice@example.com")
    [button] = unlink_buttons(client.get(METHODS))

    response = submit(client, button, {}, form_page=METHODS)

    assert response.status_code == 302
    message = mailbox.wait_for("alice@example.com", count=2)
    assert message["Subject"] == "Test ID was unlinked from your account"
    text_of_mail = body(message)
    assert_names_the_identity(text_of_mail, "Test ID", "alice.elsewhere@example.org", "a-78")
    assert "If it was not you" in text_of_mail
    assert link_in(message, "/password/forgot")


def test_the_notice_is_in_the_owners_language(client, make_account, mailbox, idp):
    make_account("amelie@example.com", locale="fr")
    submit(client, "/login", {"email": "amelie@example.com", "password": PASSWORD})

    link(client, email="amelie@example.fr", subject="am-1")

    message = mailbox.wait_for("amelie@example.com")
    assert body(message).startswith("Bonjour,")
    assert "L\u2019équipe" in body(message)


def test_the_password_proof_page_names_the_identity_and_the_owner_is_told(
    client, make_account, mailbox, db_session, idp
):
    make_account("alice@example.com")
    continue_with(client, email="alice@example.com", subject="alice-sub-42", name="Alice A.")

    page = client.get("/auth/oauth/link/confirm")
    assert_names_the_identity(text(page), "Test ID", "alice@example.com", "alice-sub-42")
    assert "Identifier at Test ID" in text(page)

    response = submit(client, "/auth/oauth/link/confirm", {"password": PASSWORD})
    assert response.status_code == 302

    message = mailbox.wait_for("alice@example.com")
    assert message["Subject"] == "Test ID was linked to your account"
    assert_names_the_identity(body(message), "Test ID", "alice@example.com", "alice-sub-42")


def test_the_emailed_link_page_names_the_identity_and_the_owner_is_told(
    client, new_browser, make_account, mailbox, idp
):
    make_account("alice@example.com")
    continue_with(client, email="alice@example.com", subject="alice-sub-43")
    submit(client, "/auth/oauth/link/email", {}, form_page="/auth/oauth/link/confirm")
    confirm = link_in(mailbox.wait_for("alice@example.com"), "/auth/oauth/link/email/")

    elsewhere = new_browser()
    page = elsewhere.get(confirm)
    assert page.status_code == 200
    assert_names_the_identity(text(page), "Test ID", "alice@example.com", "alice-sub-43")
    assert "Identifier at Test ID" in text(page)

    assert submit(elsewhere, confirm, {}).status_code == 302

    message = mailbox.wait_for("alice@example.com", count=2)
    assert message["Subject"] == "Test ID was linked to your account"
    assert_names_the_identity(body(message), "Test ID", "alice@example.com", "alice-sub-43")


def test_an_account_created_by_its_first_sign_in_gets_no_link_notice(
    client, mailbox, db_session, idp
):
    """The identity is how the account was made, not something added to it."""
    continue_with(client, email="sam@example.com", subject="sam-new")
    assert account_by_email(db_session, "sam@example.com") is not None
    # Anything mailed would be sent right after the commit, i.e. already here.
    assert mailbox.to("sam@example.com") == []
