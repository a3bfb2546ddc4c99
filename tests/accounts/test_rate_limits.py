"""Guessing is slowed down: sign-in 5 a minute per address and 10 a minute per IP,
password-reset requests 5 a minute; the refusal says when to try again."""

from __future__ import annotations

from tests.accounts.flows import is_signed_in, text
from tests.conftest import PASSWORD, csrf_token, submit

WRONG_PASSWORD = "not the right password"


def _attempt(client, email, password=WRONG_PASSWORD):
    return submit(client, "/login", {"email": email, "password": password})


def _assert_paused(response):
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 60
    page = text(response)
    assert "Too many attempts" in page
    assert "You can try again in about" in page


def test_sixth_attempt_on_one_address_within_a_minute_is_refused_with_retry_after(
    client, make_account
):
    make_account("alice@example.com")
    for _ in range(5):
        assert _attempt(client, "alice@example.com").status_code == 422

    response = _attempt(client, "alice@example.com")

    _assert_paused(response)


def test_paused_address_refuses_even_the_right_password(client, make_account):
    make_account("alice@example.com")
    for _ in range(5):
        _attempt(client, "alice@example.com")

    response = _attempt(client, "alice@example.com", PASSWORD)

    assert response.status_code == 429
    assert not is_signed_in(client)


def test_address_limit_ignores_case_and_spaces(client, make_account):
    make_account("alice@example.com")
    for email in ["alice@example.com", "ALICE@example.com", " Alice@Example.com "] * 2:
        last = _attempt(client, email)

    _assert_paused(last)


def test_address_limit_cannot_be_dodged_by_spelling_the_same_address_differently(
    client, make_account
):
    make_account("alice@example.com")
    # Each spelling signs in to alice's account (the domain is IDNA-mapped), so each must
    # count against alice's allowance.
    spellings = [
        "alice@example.com",
        "alice@\N{FULLWIDTH LATIN SMALL LETTER E}xample.com",
        "alice@e\N{FULLWIDTH LATIN SMALL LETTER X}ample.com",
        "alice@ex\N{FULLWIDTH LATIN SMALL LETTER A}mple.com",
        "alice@exa\N{FULLWIDTH LATIN SMALL LETTER M}ple.com",
    ]
    for spelling in spellings:
        assert _attempt(client, spelling).status_code == 422

    response = _attempt(client, "alice@\N{FULLWIDTH LATIN CAPITAL LETTER E}XAMPLE.com", PASSWORD)

    _assert_paused(response)


def test_address_limit_leaves_other_addresses_alone(client, make_account):
    make_account("alice@example.com")
    make_account("bob@example.com")
    for _ in range(6):
        _attempt(client, "alice@example.com")

    response = _attempt(client, "bob@example.com", PASSWORD)

    assert response.status_code == 302


def test_eleventh_attempt_from_one_ip_within_a_minute_is_refused(client, make_account):
    make_account("alice@example.com")
    for n in range(10):
        assert _attempt(client, f"visitor{n}@example.com").status_code == 422

    response = _attempt(client, "alice@example.com", PASSWORD)

    _assert_paused(response)
    assert not is_signed_in(client)


def test_ip_limit_applies_per_ip_address(client, new_browser, make_account):
    make_account("alice@example.com")
    for n in range(10):
        _attempt(client, f"visitor{n}@example.com")
    elsewhere = new_browser()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"

    response = _attempt(elsewhere, "alice@example.com", PASSWORD)

    assert response.status_code == 302


def test_showing_the_login_page_is_not_limited(client):
    for _ in range(12):
        csrf_token(client, "/login")

    assert client.get("/login").status_code == 200


def test_password_reset_requests_are_limited_to_five_a_minute(client, make_account, mailbox):
    make_account("alice@example.com")
    for _ in range(5):
        response = submit(client, "/password/forgot", {"email": "alice@example.com"})
        assert response.status_code == 302

    response = submit(client, "/password/forgot", {"email": "alice@example.com"})

    _assert_paused(response)
    assert len(mailbox.to("alice@example.com")) == 5


def test_rate_limit_answers_json_clients_with_a_problem_document(client, make_account):
    make_account("alice@example.com")
    for _ in range(5):
        _attempt(client, "alice@example.com")
    token = csrf_token(client, "/login")

    response = client.post(
        "/login",
        data={"csrf_token": token, "email": "alice@example.com", "password": "x"},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 429
    assert int(response.headers["Retry-After"]) > 0


def test_retry_after_is_sent_only_when_paused(client, make_account):
    make_account("alice@example.com")
    response = _attempt(client, "alice@example.com")
    assert response.status_code == 422
    assert "Retry-After" not in response.headers
