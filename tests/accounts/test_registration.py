"""Creating an account: the form's rules, the verification mail, and no account enumeration."""

from __future__ import annotations

import pytest

from tests.accounts.flows import (
    account_by_email,
    count_accounts,
    event_kinds,
    field_errors,
    is_signed_in,
    register,
    text,
    tokens_of,
)
from tests.conftest import PASSWORD, sign_in, submit
from tests.mailbox import body, link_in

NEW_PASSWORD = "a brand new passphrase"


def test_registration_creates_an_unverified_account_and_mails_a_verification_link(
    client, db_session, mailbox
):
    response = register(client, "carol@example.com")

    assert response.status_code == 302
    assert response.location == "/check-email?reason=verify"
    account = account_by_email(db_session, "carol@example.com")
    assert account is not None
    assert account.email_verified_at is None
    assert account.password_hash
    assert PASSWORD not in account.password_hash
    assert event_kinds(db_session, account) == ["registered"]
    message = mailbox.wait_for("carol@example.com")
    assert message["Subject"] == "Confirm your email address"
    assert link_in(message, "/verify-email/")


def test_check_email_page_tells_the_visitor_to_follow_the_link(client):
    register(client, "carol@example.com")

    page = client.get("/check-email?reason=verify")

    assert page.status_code == 200
    assert "Follow the link" in text(page)


def test_verification_link_shows_a_confirm_button_and_a_get_changes_nothing(
    client, db_session, mailbox
):
    register(client, "carol@example.com")
    link = link_in(mailbox.wait_for("carol@example.com"), "/verify-email/")

    page = client.get(link)

    assert page.status_code == 200
    assert "Confirm my email address</button>" in text(page)
    assert 'name="csrf_token"' in text(page)
    assert account_by_email(db_session, "carol@example.com").email_verified_at is None


def test_confirming_the_verification_link_verifies_the_account_and_sign_in_then_works(
    client, db_session, mailbox, new_browser
):
    register(client, "carol@example.com")
    link = link_in(mailbox.wait_for("carol@example.com"), "/verify-email/")

    response = submit(client, link, {})

    assert response.status_code == 302
    # Confirming from the emailed link signs the consumer in straight away.
    assert response.location == "/account/"
    account = account_by_email(db_session, "carol@example.com")
    assert account.email_verified_at is not None
    assert event_kinds(db_session, account)[:2] == ["registered", "email_verified"]
    assert "Your email address is confirmed." in text(client.get("/account/"))
    other = new_browser()
    sign_in(other, "carol@example.com")
    assert is_signed_in(other)


def test_unverified_account_cannot_sign_in_before_following_the_link(client, mailbox):
    register(client, "carol@example.com")

    response = submit(client, "/login", {"email": "carol@example.com", "password": PASSWORD})

    assert response.status_code == 422
    assert not is_signed_in(client)


def test_registering_an_existing_address_answers_like_a_new_one_and_creates_nothing(
    client, new_browser, db_session, make_account, mailbox
):
    alice = make_account("alice@example.com")
    accounts_before = count_accounts(db_session)
    hash_before = alice.password_hash
    tokens_before = len(tokens_of(db_session, alice, "verify_email"))

    fresh = register(new_browser(), "dave@example.com")
    existing = register(client, "alice@example.com", NEW_PASSWORD)

    assert (existing.status_code, existing.location) == (fresh.status_code, fresh.location)
    assert count_accounts(db_session) == accounts_before + 1  # only dave
    alice_now = account_by_email(db_session, "alice@example.com")
    assert alice_now.password_hash == hash_before
    assert len(tokens_of(db_session, alice_now, "verify_email")) == tokens_before
    assert event_kinds(db_session, alice_now) == ["registered"]


def test_registering_an_existing_address_mails_its_owner_instead_of_a_verification_link(
    client, make_account, mailbox
):
    make_account("alice@example.com")

    register(client, "Alice@Example.COM", NEW_PASSWORD)

    message = mailbox.wait_for("alice@example.com")
    assert message["Subject"] == "Someone tried to create an account with your address"
    assert link_in(message, "/login")
    assert link_in(message, "/password/forgot")
    assert "/verify-email/" not in body(message)
    assert len(mailbox.to("alice@example.com")) == 1


def test_registering_an_existing_address_leaves_its_password_in_place(client, make_account):
    make_account("alice@example.com")

    register(client, "alice@example.com", NEW_PASSWORD)

    refused = submit(client, "/login", {"email": "alice@example.com", "password": NEW_PASSWORD})
    assert refused.status_code == 422
    sign_in(client, "alice@example.com", PASSWORD)


def test_registered_address_is_stored_lower_case_and_mailed_there(client, db_session, mailbox):
    register(client, "  Carol.Smith@Example.COM ")

    assert account_by_email(db_session, "carol.smith@example.com") is not None
    assert mailbox.wait_for("carol.smith@example.com")


@pytest.mark.parametrize(
    ("length", "accepted"),
    [(11, False), (12, True), (128, True), (129, False)],
)
def test_password_length_policy_is_12_to_128_characters(
    client, db_session, mailbox, length, accepted
):
    password = ("correct horse " * 20)[: length - 1] + "x"
    assert len(password) == length

    response = register(client, "carol@example.com", password)

    created = account_by_email(db_session, "carol@example.com")
    if accepted:
        assert response.status_code == 302
        assert created is not None
    else:
        assert response.status_code == 422
        assert created is None
        expected = "Use at least 12 characters." if length < 12 else "Use at most 128 characters."
        assert field_errors(response, "password") == [expected]
        assert mailbox.to("carol@example.com") == []


def test_password_counts_characters_not_bytes(client, db_session):
    password = "éàçüöñßøåæœî"  # 24 bytes in UTF-8, 12 characters

    response = register(client, "carol@example.com", password)

    assert response.status_code == 302
    assert account_by_email(db_session, "carol@example.com") is not None


def test_password_equal_to_the_email_address_is_refused(client, db_session, mailbox):
    response = register(client, "carol.smith@example.com", "Carol.Smith@Example.com")

    assert response.status_code == 422
    assert field_errors(response, "password") == ["Your password must not be your email address."]
    assert account_by_email(db_session, "carol.smith@example.com") is None
    assert mailbox.to("carol.smith@example.com") == []


def test_mismatched_password_confirmation_is_refused(client, db_session, mailbox):
    response = register(client, "carol@example.com", PASSWORD, confirm=PASSWORD + "!")

    assert response.status_code == 422
    assert field_errors(response, "password_confirm") == ["The two passwords are not the same."]
    assert account_by_email(db_session, "carol@example.com") is None
    assert mailbox.to("carol@example.com") == []


@pytest.mark.parametrize(
    "email",
    ["carol", "carol@", "@example.com", "carol@@example.com", "carol smith@example.com", ""],
)
def test_malformed_email_is_refused_with_a_form_error(client, db_session, email):
    accounts_before = count_accounts(db_session)

    response = register(client, email)

    assert response.status_code == 422
    assert len(field_errors(response, "email")) == 1
    assert count_accounts(db_session) == accounts_before


def test_email_of_254_characters_is_accepted(client, db_session):
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(email) == 254

    response = register(client, email)

    assert response.status_code == 302
    assert account_by_email(db_session, email) is not None


@pytest.mark.parametrize("length", [255, 321, 5000])
def test_over_long_email_gets_one_clear_form_error_and_creates_nothing(client, db_session, length):
    email = "a" * (length - len("@example.com")) + "@example.com"
    accounts_before = count_accounts(db_session)

    response = register(client, email)

    assert response.status_code == 422
    assert field_errors(response, "email") == ["An email address has at most 254 characters."]
    assert count_accounts(db_session) == accounts_before


def test_over_long_password_fields_get_a_clear_form_error_and_create_nothing(client, db_session):
    huge = "x" * 100_000

    response = register(client, "carol@example.com", huge)

    assert response.status_code == 422
    assert field_errors(response, "password") == ["Use at most 128 characters."]
    assert account_by_email(db_session, "carol@example.com") is None


def test_registration_form_keeps_the_email_but_never_echoes_the_password(client):
    response = register(client, "carol@example.com", "short", confirm="short")

    assert response.status_code == 422
    page = text(response)
    assert 'value="carol@example.com"' in page
    assert 'value="short"' not in page


def test_signed_in_visitor_is_sent_from_registration_to_the_account(client, make_account):
    make_account()
    sign_in(client)

    response = client.get("/register")

    assert response.status_code == 302
    assert response.location == "/account/"


@pytest.mark.parametrize(
    "password",
    ["password1234", "qwertyuiop12", "aaaaaaaaaaaaaaaa", "carol.smith2024"],
    ids=["common", "keyboard-row", "repetition", "from-the-email"],
)
def test_easily_guessed_password_is_refused(client, db_session, mailbox, password):
    response = register(client, "carol.smith@example.com", password)

    assert response.status_code == 422
    (message,) = field_errors(response, "password")
    assert message.startswith("This password is too easy to guess")
    assert account_by_email(db_session, "carol.smith@example.com") is None
    assert mailbox.to("carol.smith@example.com") == []
