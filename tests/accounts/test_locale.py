"""The language switcher: the choice is kept on the account (no French strings asserted:
the translations are still being written)."""

from __future__ import annotations

from tests.accounts.flows import account_by_email, event_kinds, register, reloaded
from tests.conftest import sign_in, submit


def _switch(client, locale, next_path="/account/"):
    return submit(client, "/locale", {"locale": locale, "next": next_path}, form_page="/")


def test_language_chosen_while_signed_in_is_kept_on_the_account(client, make_account, db_session):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    response = _switch(client, "fr")

    assert response.status_code == 302
    assert response.location == "/account/"
    assert reloaded(db_session, alice).locale == "fr"
    assert event_kinds(db_session, alice)[-1] == "locale_changed"


def test_language_kept_on_the_account_is_used_in_a_new_browser(client, new_browser, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    _switch(client, "fr")

    other = new_browser()
    sign_in(other, "alice@example.com")
    page = other.get("/account/", headers={"Accept-Language": "en"})

    assert '<html lang="fr">' in page.get_data(as_text=True)


def test_switching_back_to_english_is_kept_too(client, make_account, db_session):
    alice = make_account("alice@example.com", locale="fr")
    sign_in(client, "alice@example.com")

    _switch(client, "en")

    assert reloaded(db_session, alice).locale == "en"


def test_language_chosen_before_registering_becomes_the_accounts(client, db_session):
    _switch(client, "fr", next_path="/register")

    register(client, "carol@example.com")

    assert account_by_email(db_session, "carol@example.com").locale == "fr"


def test_unsupported_language_is_refused_and_changes_nothing(client, make_account, db_session):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    response = _switch(client, "de")

    assert response.status_code == 302
    assert reloaded(db_session, alice).locale is None
    assert "locale_changed" not in event_kinds(db_session, alice)


def test_language_switch_returns_only_to_local_pages(client):
    assert _switch(client, "en", next_path="/help").location == "/help"
    assert _switch(client, "en", next_path="https://evil.example/").location == "/"
    assert _switch(client, "en", next_path="//evil.example").location == "/"


def test_language_chosen_before_signing_in_is_kept_after_sign_in(client, make_account):
    make_account("alice@example.com")
    _switch(client, "fr", next_path="/login")
    sign_in(client, "alice@example.com")
    page = client.get("/account/").get_data(as_text=True)
    assert '<html lang="fr">' in page
