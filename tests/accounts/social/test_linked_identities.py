"""Linked sign-in methods in the account settings: link, list, unlink, and the rules."""

from __future__ import annotations

import re

from tests.accounts.flows import account_by_email, event_kinds, is_signed_in, text
from tests.accounts.social.flows import (
    at_provider,
    back_to_portal,
    continue_with,
    identities_of,
    start_link,
)
from tests.conftest import submit
from tests.identity_provider import PROVIDER, SECOND_PROVIDER


def link(client, provider=PROVIDER, **identity):
    return back_to_portal(client, at_provider(start_link(client, provider), **identity))


def unlink_buttons(response):
    return re.findall(r'action="(/account/sign-in-methods/\d+/unlink)"', text(response))


def test_the_settings_page_is_in_the_account_navigation(client, alice):
    overview = client.get("/account/")
    assert 'href="/account/sign-in-methods"' in text(overview)
    page = client.get("/account/sign-in-methods")
    assert page.status_code == 200
    assert "No provider is linked to your account." in text(page)
    assert "Link Test ID" in text(page)
    assert "Link Down ID" in text(page)


def test_linking_while_signed_in_needs_no_verified_address(client, alice, db_session, idp):
    response = link(client, email="alice.elsewhere@example.org", verified=False, subject="a-1")

    assert response.location == "/account/sign-in-methods"
    assert identities_of(db_session, alice) == [(PROVIDER, "a-1")]
    assert event_kinds(db_session, alice)[-1] == "identity_linked"
    page = client.get("/account/sign-in-methods")
    assert "Test ID is now linked to your account." in text(page)
    assert "alice.elsewhere@example.org" in text(page)
    assert "Last used" in text(page)
    assert "Link Test ID" not in text(page)


def test_an_identity_linked_to_another_account_is_refused(
    client, new_browser, make_account, db_session, idp
):
    bob_browser = new_browser()
    continue_with(bob_browser, email="bob@example.com", subject="bob")
    bob = account_by_email(db_session, "bob@example.com")
    make_account("alice@example.com")
    submit(client, "/login", {"email": "alice@example.com", "password": PASSWORD})
    alice = account_by_email(db_session, "alice@example.com")

    response = link(client, email="bob@example.com", subject="bob")

    assert response.status_code == 409
    assert "already linked to another account" in text(response)
    assert 'href="/account/sign-in-methods"' in text(response)
    assert identities_of(db_session, alice) == []
    assert identities_of(db_session, bob) == [(PROVIDER, "bob")]


def test_unlinking_is_refused_when_it_would_leave_no_way_to_sign_in(client, db_session, idp):
    continue_with(client, email="sam@example.com", subject="sam")
    sam = account_by_email(db_session, "sam@example.com")
    page = client.get("/account/sign-in-methods")
    assert "Your account has no password" in text(page)
    assert unlink_buttons(page) == []

    # The form is not shown, and posting anyway is refused too.
    identity_id = _identity_ids(db_session, sam)[0]
    refused = submit(
        client,
        f"/account/sign-in-methods/{identity_id}/unlink",
        {},
        form_page="/account/sign-in-methods",
    )
    assert refused.status_code == 302
    assert identities_of(db_session, sam) == [(PROVIDER, "sam")]
    assert "only way to sign in" in text(client.get("/account/sign-in-methods"))

    # With a second provider linked, either one can go, but not the last.
    link(client, SECOND_PROVIDER, email="sam@example.com", subject="sam-2")
    page = client.get("/account/sign-in-methods")
    buttons = unlink_buttons(page)
    assert len(buttons) == 2
    done = submit(client, buttons[0], {}, form_page="/account/sign-in-methods")  # Second ID
    assert done.status_code == 302
    assert identities_of(db_session, sam) == [(PROVIDER, "sam")]
    assert "identity_unlinked" in event_kinds(db_session, sam)
    assert unlink_buttons(client.get("/account/sign-in-methods")) == []
    assert is_signed_in(client)


def test_an_account_with_a_password_can_unlink_its_only_provider(client, alice, db_session, idp):
    link(client, subject="alice-1")
    page = client.get("/account/sign-in-methods")
    [button] = unlink_buttons(page)
    response = submit(client, button, {}, form_page="/account/sign-in-methods")

    assert response.status_code == 302
    assert identities_of(db_session, alice) == []
    kinds = event_kinds(db_session, alice)
    assert kinds.index("identity_linked") < kinds.index("identity_unlinked")
    assert "Sign-in method unlinked" in text(client.get("/account/activity"))


def test_another_accounts_identity_cannot_be_unlinked(client, new_browser, alice, db_session, idp):
    continue_with(new_browser(), email="bob@example.com", subject="bob")
    bob = account_by_email(db_session, "bob@example.com")
    identity_id = _identity_ids(db_session, bob)[0]
    response = submit(
        client,
        f"/account/sign-in-methods/{identity_id}/unlink",
        {},
        form_page="/account/sign-in-methods",
    )
    assert response.status_code == 404
    assert identities_of(db_session, bob) == [(PROVIDER, "bob")]


def test_a_link_finished_by_someone_else_in_the_same_browser_is_refused(
    client, make_account, db_session, idp
):
    """Alice starts linking, signs out; Bob signs in and the provider's answer arrives."""
    make_account("alice@example.com")
    make_account("bob@example.com")
    submit(client, "/login", {"email": "alice@example.com", "password": PASSWORD})
    location = at_provider(start_link(client), subject="alice-x")
    submit(client, "/logout", {}, form_page="/account/")
    submit(client, "/login", {"email": "bob@example.com", "password": PASSWORD})

    response = back_to_portal(client, location)

    assert response.status_code in (400, 403)
    bob = account_by_email(db_session, "bob@example.com")
    assert identities_of(db_session, bob) == []


def _identity_ids(db_session, account):
    from sqlalchemy import select

    from vrm_portal.accounts.social.models import LinkedIdentity

    db_session.expire_all()
    return list(
        db_session.scalars(select(LinkedIdentity.id).where(LinkedIdentity.account_id == account.id))
    )


from tests.conftest import PASSWORD  # noqa: E402
