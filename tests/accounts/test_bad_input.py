"""Odd or hostile input gets a clear 4xx answer, never a server error, and changes nothing."""

from __future__ import annotations

import pytest

from tests.accounts.flows import (
    GENERIC_LOGIN_ERROR,
    account_by_email,
    count_accounts,
    error_summary,
    is_signed_in,
    register,
    sessions_of,
    text,
)
from tests.conftest import PASSWORD, csrf_token, sign_in, submit
from tests.mailbox import link_in


@pytest.mark.parametrize(
    "page",
    ["²", "\N{ARABIC-INDIC DIGIT ONE}", "-1", "0", "abc", "1e3", "99999999999", "9" * 5000, ""],
)
def test_activity_page_number_that_is_not_a_small_number_shows_the_first_page(client, alice, page):
    response = client.get("/account/activity", query_string={"page": page})

    assert response.status_code == 200
    assert "Security activity" in text(response)


def test_activity_page_past_the_end_is_empty_not_an_error(client, alice):
    response = client.get("/account/activity?page=99999")

    assert response.status_code == 200
    assert "Nothing to show yet." in text(response)


@pytest.mark.parametrize("session_id", ["0", "2147483648", "99999999999999999999", "9" * 400])
def test_revoking_a_session_id_out_of_range_is_not_found(client, alice, db_session, session_id):
    response = submit(
        client, f"/account/sessions/{session_id}/revoke", {}, form_page="/account/sessions"
    )

    assert response.status_code == 404
    assert is_signed_in(client)


@pytest.mark.parametrize("path", ["/account/sessions/abc/revoke", "/account/sessions/-1/revoke"])
def test_revoking_a_session_id_that_is_not_a_number_is_not_found(client, alice, path):
    response = submit(client, path, {}, form_page="/account/sessions")

    assert response.status_code == 404


@pytest.mark.parametrize(
    "path", ["/verify-email/{t}", "/password/reset/{t}", "/account/email/confirm/{t}"]
)
@pytest.mark.parametrize("token", ["x" * 129, "x" * 4000, "%00", "..%2F..%2Fetc"])
def test_emailed_link_with_a_mangled_token_is_not_found(client, alice, path, token):
    response = client.get(path.format(t=token))

    assert response.status_code == 404


def test_login_with_over_long_fields_is_a_form_error(client, make_account):
    make_account("alice@example.com")

    response = submit(client, "/login", {"email": "a" * 5000, "password": "p" * 5000})

    assert response.status_code == 422
    assert not is_signed_in(client)


def test_login_with_control_characters_is_refused_generically(client, make_account):
    make_account("alice@example.com")

    response = submit(client, "/login", {"email": "alice\x00@example.com", "password": PASSWORD})

    assert response.status_code == 422
    assert GENERIC_LOGIN_ERROR in error_summary(response)


def test_login_with_missing_fields_asks_for_them(client):
    response = submit(client, "/login", {})

    assert response.status_code == 422
    assert "Enter your email address." in text(response)
    assert "Enter your password." in text(response)


def test_registration_with_missing_fields_asks_for_them_and_creates_nothing(client, db_session):
    before = count_accounts(db_session)

    response = submit(client, "/register", {})

    assert response.status_code == 422
    assert "Enter your email address." in text(response)
    assert "Choose a password." in text(response)
    assert count_accounts(db_session) == before


def test_registration_with_a_repeated_email_field_uses_the_first(client, db_session):
    token = csrf_token(client, "/register")

    response = client.post(
        "/register",
        data={
            "csrf_token": token,
            "email": ["carol@example.com", "mallory@example.com"],
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )

    assert response.status_code == 302
    assert account_by_email(db_session, "carol@example.com") is not None
    assert account_by_email(db_session, "mallory@example.com") is None


def test_request_body_over_one_megabyte_is_refused(client, db_session):
    token = csrf_token(client, "/register")
    before = count_accounts(db_session)

    response = client.post(
        "/register",
        data={
            "csrf_token": token,
            "email": "carol@example.com",
            "password": "x" * (2 * 1024 * 1024),
        },
    )

    assert response.status_code == 413
    assert count_accounts(db_session) == before


def test_password_with_unusual_characters_works_end_to_end(
    client, new_browser, db_session, mailbox
):
    password = "pässwörd \x00 with nul ☃ and \N{EMOJI MODIFIER FITZPATRICK TYPE-3}"

    register(client, "carol@example.com", password)
    submit(client, link_in(mailbox.wait_for("carol@example.com"), "/verify-email/"), {})

    sign_in(new_browser(), "carol@example.com", password)


def test_password_is_compared_after_unicode_normalisation(client, new_browser, mailbox):
    composed = "caf\N{LATIN SMALL LETTER E WITH ACUTE} au lait chaud"
    decomposed = "cafe\N{COMBINING ACUTE ACCENT} au lait chaud"

    register(client, "carol@example.com", composed)
    submit(client, link_in(mailbox.wait_for("carol@example.com"), "/verify-email/"), {})

    sign_in(new_browser(), "carol@example.com", decomposed)


def test_internationalised_address_registers_and_receives_its_link(client, db_session, mailbox):
    response = register(client, "Jöhn@Exämple.com")

    assert response.status_code == 302
    assert account_by_email(db_session, "jöhn@exämple.com") is not None
    assert link_in(mailbox.wait_for("jöhn@exämple.com"), "/verify-email/")


def test_check_email_page_does_not_reflect_its_reason(client):
    response = client.get("/check-email", query_string={"reason": "<script>alert(1)</script>"})

    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in text(response)
    assert "Check your email" in text(response)


def test_next_with_markup_is_not_reflected_in_the_login_page(client):
    response = client.get("/login", query_string={"next": '/"><script>alert(1)</script>'})

    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in text(response)


def test_long_user_agent_is_clipped_not_refused(client, make_account, db_session):
    alice = make_account("alice@example.com")
    client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 " + "x" * 2000

    sign_in(client, "alice@example.com")

    (session,) = sessions_of(db_session, alice)
    assert len(session.user_agent) == 255
    assert is_signed_in(client)
