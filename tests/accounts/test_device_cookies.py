"""Device cookies (OWASP): strangers who use up an address's sign-in budget do not lock out
a browser that signed in to that account before; that browser has a budget of its own,
and a forged device cookie, or one of another account, gives no extra attempts."""

from __future__ import annotations

import json

from itsdangerous import URLSafeTimedSerializer

from tests.accounts.flows import is_signed_in, text
from tests.accounts.social.flows import continue_with, identities_of
from tests.conftest import PASSWORD, sign_in, submit

WRONG_PASSWORD = "not the right password"
DEVICE_COOKIE = "vrm_device"
ONE_YEAR = 365 * 24 * 3600


def _browser_at(new_browser, address):
    browser = new_browser()
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def _attempt(browser, password, email="alice@example.com"):
    return submit(browser, "/login", {"email": email, "password": password})


def _exhaust_from_strangers(new_browser, email="alice@example.com"):
    """Strangers guess from unknown browsers until the address is paused."""
    for n in range(1, 8):
        stranger = _browser_at(new_browser, f"203.0.113.{n}")
        if _attempt(stranger, WRONG_PASSWORD, email).status_code == 429:
            return
    raise AssertionError("the address was never paused")


def _known_browser(client, email="alice@example.com"):
    """``client`` after a successful sign-in to the account, signed out again."""
    sign_in(client, email)
    submit(client, "/logout", {}, form_page="/account/")
    assert not is_signed_in(client)
    return client


def _device_cookie_header(response):
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(DEVICE_COOKIE)]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return headers[0]


def test_strangers_using_up_the_address_budget_do_not_lock_out_a_known_browser(
    client, new_browser, make_account
):
    make_account("alice@example.com")
    owner = _known_browser(client)
    _exhaust_from_strangers(new_browser)
    assert _attempt(_browser_at(new_browser, "192.0.2.9"), PASSWORD).status_code == 429

    response = _attempt(owner, PASSWORD)

    assert response.status_code == 302
    assert is_signed_in(owner)


def test_a_known_browser_that_keeps_failing_is_paused_itself(client, new_browser, make_account):
    make_account("alice@example.com")
    owner = _known_browser(client)
    for _ in range(5):
        assert _attempt(owner, WRONG_PASSWORD).status_code == 422

    paused = _attempt(owner, PASSWORD)

    assert paused.status_code == 429
    assert "Too many attempts" in text(paused)
    assert not is_signed_in(owner)
    # Its failures were its own: the address's budget is untouched.
    elsewhere = _browser_at(new_browser, "192.0.2.9")
    assert _attempt(elsewhere, PASSWORD).status_code == 302


def test_a_forged_device_cookie_gives_no_extra_attempts(client, new_browser, make_account):
    alice = make_account("alice@example.com")
    _exhaust_from_strangers(new_browser)
    forgeries = [
        URLSafeTimedSerializer("not the portal's key", salt="vrm-device-cookie").dumps(
            {"a": alice.id, "n": "forged"}
        ),
        json.dumps({"a": alice.id, "n": "unsigned"}),
        "garbage",
    ]
    for n, forged in enumerate(forgeries):
        attacker = _browser_at(new_browser, f"198.51.100.{n + 1}")
        attacker.set_cookie(DEVICE_COOKIE, forged)

        response = _attempt(attacker, PASSWORD)

        assert response.status_code == 429
        assert not is_signed_in(attacker)


def test_a_tampered_device_cookie_gives_no_extra_attempts(client, new_browser, make_account):
    make_account("alice@example.com")
    owner = _known_browser(client)
    genuine = owner.get_cookie(DEVICE_COOKIE).value
    _exhaust_from_strangers(new_browser)
    tampered = genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")
    attacker = _browser_at(new_browser, "198.51.100.7")
    attacker.set_cookie(DEVICE_COOKIE, tampered)

    assert _attempt(attacker, PASSWORD).status_code == 429


def test_a_device_cookie_of_another_account_gives_no_extra_attempts(
    client, new_browser, make_account
):
    make_account("alice@example.com")
    make_account("mallory@example.com")
    attacker = _browser_at(new_browser, "198.51.100.7")
    _known_browser(attacker, "mallory@example.com")
    for _ in range(5):
        assert _attempt(attacker, WRONG_PASSWORD).status_code == 422

    assert _attempt(attacker, PASSWORD).status_code == 429


def test_the_device_cookie_is_signed_http_only_and_kept_for_a_year(
    app, client, make_account, monkeypatch
):
    alice = make_account("alice@example.com")

    header = _device_cookie_header(sign_in(client))

    attributes = [part.strip().lower() for part in header.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert f"max-age={ONE_YEAR}" in attributes
    assert "secure" not in attributes  # the tests run over http, as development does
    value = header.split(";", 1)[0].split("=", 1)[1]
    assert "alice@example.com" not in value
    assert URLSafeTimedSerializer(app.secret_key, salt="vrm-device-cookie").loads(value)["a"] == (
        alice.id
    )

    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    submit(client, "/logout", {}, form_page="/account/")
    again = submit(client, "/login", {"email": "alice@example.com", "password": PASSWORD})
    assert "secure" in [p.strip().lower() for p in _device_cookie_header(again).split(";")]


def test_a_known_browser_can_still_prove_ownership_when_linking(
    client, new_browser, make_account, db_session, identity_provider
):
    identity_provider.reset()
    alice = make_account("alice@example.com")
    owner = _known_browser(client)
    _exhaust_from_strangers(new_browser)

    assert continue_with(owner, email="alice@example.com", subject="alice-at-idp").location == (
        "/auth/oauth/link/confirm"
    )
    response = submit(owner, "/auth/oauth/link/confirm", {"password": PASSWORD})

    assert response.status_code == 302
    assert is_signed_in(owner)
    assert len(identities_of(db_session, alice)) == 1
