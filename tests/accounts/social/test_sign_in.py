"""Signing in with a provider: first sign-in, returning sign-in, and what an address
alone can never do (create or join an account the provider does not vouch for)."""

from __future__ import annotations

from tests.accounts.flows import (
    account_by_email,
    can_sign_in,
    count_accounts,
    event_kinds,
    is_signed_in,
    reloaded,
    text,
)
from tests.accounts.social.flows import (
    at_provider,
    back_to_portal,
    continue_with,
    identities_of,
    identity_row,
    start,
)
from tests.conftest import PASSWORD, submit
from tests.identity_provider import PROVIDER
from tests.mailbox import link_in


def test_first_sign_in_creates_a_verified_account_without_password(client, db_session, idp):
    response = continue_with(client, email="Sam@Example.com", subject="sam-1", name="Sam")

    assert response.status_code == 302
    assert response.location == "/account/"
    assert is_signed_in(client)
    account = account_by_email(db_session, "sam@example.com")
    assert account is not None
    assert account.is_verified
    assert account.password_hash is None
    assert identities_of(db_session, account) == [(PROVIDER, "sam-1")]
    assert event_kinds(db_session, account) == [
        "registered",
        "identity_linked",
        "social_sign_in",
        "signed_in",
    ]


def test_sign_in_goes_back_to_the_page_asked_for(client, idp):
    location = at_provider(start(client, next="/account/sessions"), subject="sam-2")
    response = back_to_portal(client, location)
    assert response.location == "/account/sessions"


def test_returning_sign_in_follows_the_subject_even_when_the_provider_changes_the_email(
    client, new_browser, db_session, idp
):
    continue_with(client, email="sam@example.com", subject="sam-3")
    account = account_by_email(db_session, "sam@example.com")

    later = new_browser()
    response = continue_with(later, email="sam.new@example.org", subject="sam-3")

    assert response.location == "/account/"
    assert is_signed_in(later)
    assert count_accounts(db_session) == 1
    assert reloaded(db_session, account).email == "sam@example.com"
    row = identity_row(db_session, PROVIDER, "sam-3")
    assert row is not None
    assert row.email_seen == "sam.new@example.org"
    assert row.last_used_at is not None


def test_an_unverified_address_creates_no_account(client, db_session, idp):
    response = continue_with(client, email="unsure@example.com", verified=False)

    assert response.status_code == 403
    assert "did not confirm that the email address is yours" in text(response)
    assert 'href="/login"' in text(response)
    assert count_accounts(db_session) == 0
    assert not is_signed_in(client)


def test_an_unverified_address_of_an_existing_account_is_not_linked(
    client, make_account, db_session, idp
):
    alice = make_account("alice@example.com")
    response = continue_with(client, email="alice@example.com", verified=False)

    assert response.status_code == 403
    assert identities_of(db_session, alice) == []
    assert not is_signed_in(client)


def test_a_known_address_needs_the_password_before_linking(
    client, new_browser, make_account, db_session, idp
):
    alice = make_account("alice@example.com")
    response = continue_with(client, email="alice@example.com", subject="alice-at-idp")

    # Not signed in, nothing linked: the owner must first prove the account is theirs.
    assert response.location == "/auth/oauth/link/confirm"
    assert not is_signed_in(client)
    assert identities_of(db_session, alice) == []
    page = client.get("/auth/oauth/link/confirm")
    assert "An account already uses alice@example.com" in text(page)

    wrong = submit_password(client, "not the password")
    assert wrong.status_code == 422
    assert identities_of(db_session, alice) == []

    right = submit_password(client, PASSWORD)
    assert right.status_code == 302
    assert is_signed_in(client)
    assert identities_of(db_session, alice) == [(PROVIDER, "alice-at-idp")]
    assert "identity_link_requested" in event_kinds(db_session, alice)
    assert "identity_linked" in event_kinds(db_session, alice)

    # From now on the provider alone signs Alice in.
    later = new_browser()
    again = continue_with(later, email="alice@example.com", subject="alice-at-idp")
    assert again.location == "/account/"
    assert is_signed_in(later)


def test_a_known_address_can_be_proven_through_an_emailed_link(
    client, new_browser, make_account, db_session, mailbox, idp
):
    alice = make_account("alice@example.com")
    continue_with(client, email="alice@example.com", subject="alice-by-mail")
    response = submit(client, "/auth/oauth/link/email", {}, form_page="/auth/oauth/link/confirm")
    assert response.location.startswith("/check-email")
    assert identities_of(db_session, alice) == []

    link = link_in(mailbox.wait_for("alice@example.com"), "/auth/oauth/link/email/")
    elsewhere = new_browser()
    page = elsewhere.get(link)
    assert page.status_code == 200
    assert "Link Test ID to your account" in text(page)
    assert identities_of(db_session, alice) == []  # opening the link changes nothing

    confirmed = submit(elsewhere, link, {})
    assert confirmed.status_code == 302
    assert is_signed_in(elsewhere)
    assert identities_of(db_session, alice) == [(PROVIDER, "alice-by-mail")]
    assert submit(new_browser(), link, {}, form_page=None).status_code == 410


def test_proving_an_unconfirmed_account_by_email_drops_the_password_someone_else_chose(
    client, new_browser, make_account, db_session, mailbox, idp
):
    # Someone registered Victor's address first, with a password of their own.
    victor = make_account("victor@example.com", verified=False)
    continue_with(client, email="victor@example.com", subject="victor")
    submit(client, "/auth/oauth/link/email", {}, form_page="/auth/oauth/link/confirm")
    link = link_in(mailbox.wait_for("victor@example.com"), "/auth/oauth/link/email/")
    submit(client, link, {})

    fresh = reloaded(db_session, victor)
    assert fresh.is_verified
    assert fresh.password_hash is None
    assert not can_sign_in(new_browser, "victor@example.com")
    assert identities_of(db_session, victor) == [(PROVIDER, "victor")]


def submit_password(client, password):
    return submit(client, "/auth/oauth/link/confirm", {"password": password})
