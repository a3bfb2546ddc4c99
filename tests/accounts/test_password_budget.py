"""One budget of password attempts per account address, shared by every form that checks
a password: sign-in, the "prove this account is yours" form of social linking, and the
re-authentication of the email change, the password change and the account deletion.

Guessing on one form, from any client address, pauses all of them; a paused form refuses
even the right password, without checking it.
"""

from __future__ import annotations

from sqlalchemy import select

from tests.accounts.flows import event_kinds, is_signed_in, reloaded, text, tokens_of
from tests.accounts.social.flows import continue_with, identities_of
from tests.conftest import PASSWORD, submit
from vrm_portal.accounts.models import AccountEvent, EventKind
from vrm_portal.requests.models import DataRequest

WRONG_PASSWORD = "not the right password"
NEW_PASSWORD = "a fresh passphrase for alice"
LINK_PROOF = "/auth/oauth/link/confirm"


def _browser_at(new_browser, address):
    """Another browser, from another client address (the per-client limit stays apart)."""
    browser = new_browser()
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def _exhaust_sign_in(new_browser, email="alice@example.com"):
    """A stranger guesses on /login until the address is paused."""
    stranger = _browser_at(new_browser, "203.0.113.9")
    for _ in range(6):
        response = submit(stranger, "/login", {"email": email, "password": WRONG_PASSWORD})
        if response.status_code == 429:
            return
        assert response.status_code == 422
    raise AssertionError("the address was never paused")


def _assert_paused(response):
    assert response.status_code == 429, response.status_code
    assert "Too many attempts" in text(response)
    assert int(response.headers["Retry-After"]) > 0


def _change_email(client, password):
    return submit(
        client,
        "/account/email",
        {"new_email": "alice.new@example.com", "current_password": password},
    )


def _change_password(client, password):
    return submit(
        client,
        "/account/password",
        {
            "current_password": password,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
    )


def _delete_account(client, password):
    return submit(
        client, "/account/delete/", {"when": "later", "password": password, "understood": "y"}
    )


def _erasure_requests(db_session, account):
    db_session.expire_all()
    return db_session.scalars(
        select(DataRequest).where(DataRequest.subject_key == account.subject_key)
    ).all()


def _failed_sign_ins(db_session, account):
    db_session.expire_all()
    return len(
        db_session.scalars(
            select(AccountEvent.id).where(
                AccountEvent.account_id == account.id,
                AccountEvent.kind == EventKind.SIGN_IN_FAILED.value,
            )
        ).all()
    )


def _to_link_proof(new_browser, address, subject="alice-at-idp"):
    """A browser at ``address`` signs in with a provider that gives Alice's address: it
    must prove the account is Alice's."""
    browser = _browser_at(new_browser, address)
    response = continue_with(browser, email="alice@example.com", subject=subject)
    assert response.location == LINK_PROOF
    return browser


# ---- a paused address pauses every password form -------------------------------------


def test_a_paused_address_refuses_the_email_change_even_with_the_right_password(
    client, alice, new_browser, db_session, mailbox
):
    _exhaust_sign_in(new_browser)

    response = _change_email(client, PASSWORD)

    _assert_paused(response)
    assert "email_change_requested" not in event_kinds(db_session, alice)
    assert tokens_of(db_session, alice, "change_email") == []
    assert mailbox.to("alice.new@example.com") == []


def test_a_paused_address_refuses_the_password_change_even_with_the_right_password(
    client, alice, new_browser, db_session
):
    hash_before = alice.password_hash
    _exhaust_sign_in(new_browser)

    response = _change_password(client, PASSWORD)

    _assert_paused(response)
    assert reloaded(db_session, alice).password_hash == hash_before
    assert is_signed_in(client)


def test_a_paused_address_refuses_the_account_deletion_even_with_the_right_password(
    client, alice, new_browser, db_session
):
    _exhaust_sign_in(new_browser)

    response = _delete_account(client, PASSWORD)

    _assert_paused(response)
    assert _erasure_requests(db_session, alice) == []


def test_a_paused_address_refuses_the_link_proof_from_any_client_address(
    client, make_account, new_browser, db_session, identity_provider
):
    identity_provider.reset()
    alice = make_account("alice@example.com")
    _exhaust_sign_in(new_browser)
    failures_before = _failed_sign_ins(db_session, alice)

    for n in range(1, 5):
        guesser = _to_link_proof(new_browser, f"198.51.100.{n}", subject=f"guesser-{n}")
        _assert_paused(submit(guesser, LINK_PROOF, {"password": WRONG_PASSWORD}))
    owner = _to_link_proof(new_browser, "192.0.2.44")
    refused = submit(owner, LINK_PROOF, {"password": PASSWORD})

    _assert_paused(refused)
    assert not is_signed_in(owner)
    assert identities_of(db_session, alice) == []
    # A refused attempt does not even check the password.
    assert _failed_sign_ins(db_session, alice) == failures_before


# ---- guesses on the other forms count against sign-in ----------------------------------


def test_wrong_passwords_on_the_re_authentication_forms_pause_sign_in(client, alice, new_browser):
    # The budget is 5 a minute: Alice's own sign-in was the first attempt.
    assert _change_email(client, WRONG_PASSWORD).status_code == 422
    assert _change_email(client, WRONG_PASSWORD).status_code == 422
    assert _change_password(client, WRONG_PASSWORD).status_code == 422
    assert _delete_account(client, WRONG_PASSWORD).status_code == 422

    elsewhere = _browser_at(new_browser, "192.0.2.80")
    response = submit(elsewhere, "/login", {"email": "alice@example.com", "password": PASSWORD})

    _assert_paused(response)
    assert not is_signed_in(elsewhere)


def test_wrong_passwords_on_the_link_proof_pause_sign_in(
    client, make_account, new_browser, identity_provider
):
    identity_provider.reset()
    make_account("alice@example.com")
    for n in range(1, 6):
        guesser = _to_link_proof(new_browser, f"198.51.100.{n}", subject=f"guesser-{n}")
        assert submit(guesser, LINK_PROOF, {"password": WRONG_PASSWORD}).status_code == 422

    elsewhere = _browser_at(new_browser, "192.0.2.80")
    response = submit(elsewhere, "/login", {"email": "alice@example.com", "password": PASSWORD})

    _assert_paused(response)


def test_the_budget_is_per_account(client, alice, make_account, new_browser):
    make_account("bob@example.com")
    _exhaust_sign_in(new_browser, "bob@example.com")

    assert _change_email(client, PASSWORD).status_code == 302
