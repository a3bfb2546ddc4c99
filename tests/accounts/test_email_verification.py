"""The emailed verification link: single use, expiring, superseded, bound to its account."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.accounts.flows import account_by_email, register, text, tokens_of
from tests.conftest import PASSWORD, sign_in, submit
from tests.mailbox import link_in
from vrm_portal.clock import utcnow

OTHER_ACCOUNT = "This link belongs to another account."
USED = "This link has already been used."
EXPIRED = "This link has expired."
UNKNOWN = "This link is not valid."


@pytest.fixture
def carol_link(client, mailbox):
    """Carol has just registered; the path of her verification link."""
    register(client, "carol@example.com")
    return link_in(mailbox.wait_for("carol@example.com"), "/verify-email/")


def _confirm(client, link):
    return submit(client, link, {}, form_page=link)


def _csrf_post(client, link):
    """POST the confirm button with a token taken from a page that is always available."""
    return submit(client, link, {}, form_page="/")


def test_signed_in_person_opening_another_accounts_link_is_told_and_nothing_is_verified(
    client, make_account, db_session, carol_link
):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    page = client.get(carol_link)
    posted = _csrf_post(client, carol_link)

    assert page.status_code == 403
    assert OTHER_ACCOUNT in text(page)
    assert "Confirm my email address</button>" not in text(page)
    assert posted.status_code == 403
    assert OTHER_ACCOUNT in text(posted)
    assert account_by_email(db_session, "carol@example.com").email_verified_at is None


def test_link_refused_to_another_account_still_works_for_its_owner(
    client, new_browser, make_account, db_session, carol_link
):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    _csrf_post(client, carol_link)

    response = _confirm(new_browser(), carol_link)

    assert response.status_code == 302
    assert account_by_email(db_session, "carol@example.com").email_verified_at is not None


def test_reused_verification_link_is_refused_with_a_clear_message(client, db_session, carol_link):
    _confirm(client, carol_link)
    verified_at = account_by_email(db_session, "carol@example.com").email_verified_at

    page = client.get(carol_link)
    posted = _csrf_post(client, carol_link)

    assert page.status_code == 410
    assert USED in text(page)
    assert posted.status_code == 410
    assert USED in text(posted)
    assert account_by_email(db_session, "carol@example.com").email_verified_at == verified_at


def test_expired_verification_link_is_refused_and_verifies_nothing(client, db_session, carol_link):
    carol = account_by_email(db_session, "carol@example.com")
    (token,) = tokens_of(db_session, carol, "verify_email")
    token.expires_at = utcnow() - timedelta(seconds=1)
    db_session.commit()

    page = client.get(carol_link)
    posted = _csrf_post(client, carol_link)

    assert page.status_code == 410
    assert EXPIRED in text(page)
    assert posted.status_code == 410
    assert EXPIRED in text(posted)
    assert account_by_email(db_session, "carol@example.com").email_verified_at is None


def test_link_still_valid_just_before_it_expires(client, db_session, carol_link):
    carol = account_by_email(db_session, "carol@example.com")
    (token,) = tokens_of(db_session, carol, "verify_email")
    token.expires_at = utcnow() + timedelta(seconds=30)
    db_session.commit()

    assert _confirm(client, carol_link).status_code == 302
    assert account_by_email(db_session, "carol@example.com").email_verified_at is not None


@pytest.mark.parametrize("token", ["not-a-real-token", "x" * 129, "x" * 5000])
def test_unknown_verification_token_is_refused(client, db_session, carol_link, token):
    page = client.get(f"/verify-email/{token}")
    posted = _csrf_post(client, f"/verify-email/{token}")

    assert page.status_code == 404
    assert UNKNOWN in text(page)
    assert posted.status_code == 404
    assert account_by_email(db_session, "carol@example.com").email_verified_at is None


def test_a_second_verification_link_supersedes_the_first(client, db_session, mailbox, carol_link):
    # Signing in unverified mails a fresh link.
    submit(client, "/login", {"email": "carol@example.com", "password": PASSWORD})
    second_link = link_in(mailbox.wait_for("carol@example.com", count=2), "/verify-email/")
    assert second_link != carol_link

    first = _csrf_post(client, carol_link)
    assert first.status_code == 410
    assert account_by_email(db_session, "carol@example.com").email_verified_at is None

    assert _confirm(client, second_link).status_code == 302
    assert account_by_email(db_session, "carol@example.com").email_verified_at is not None


def test_verification_link_works_only_for_the_address_it_was_sent_to(
    client, db_session, carol_link
):
    carol = account_by_email(db_session, "carol@example.com")
    carol.email = "carol.new@example.com"
    db_session.commit()

    response = _csrf_post(client, carol_link)

    assert response.status_code in (404, 410)
    assert account_by_email(db_session, "carol.new@example.com").email_verified_at is None
