"""Server-side sessions: sign-out, remember-me, timeouts and the Sessions page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.accounts.flows import (
    REMEMBER_COOKIE,
    SESSION_COOKIE,
    cookie,
    event_kinds,
    is_signed_in,
    revoke_buttons,
    sessions_of,
    text,
)
from tests.conftest import sign_in, submit
from vrm_portal.clock import utcnow


def _sign_out(client):
    return submit(client, "/logout", {}, form_page="/account/")


def _only_remember_cookie(new_browser, value):
    browser = new_browser()
    browser.set_cookie(REMEMBER_COOKIE, value)
    return browser


# -- signing out ---------------------------------------------------------------------------


def test_sign_out_ends_the_session_server_side(client, new_browser, make_account, db_session):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    stolen = cookie(client, SESSION_COOKIE)

    response = _sign_out(client)

    assert response.status_code == 302
    assert response.location == "/"
    assert not is_signed_in(client)
    thief = new_browser()
    thief.set_cookie(SESSION_COOKIE, stolen)
    assert not is_signed_in(thief)
    (session,) = sessions_of(db_session, alice)
    assert session.revoked_reason == "signed_out"
    assert event_kinds(db_session, alice)[-1] == "signed_out"


def test_sign_out_deletes_the_remember_cookie_and_ends_it(
    client, new_browser, make_account, db_session
):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com", remember="y")
    remembered = cookie(client, REMEMBER_COOKIE)

    _sign_out(client)

    assert cookie(client, REMEMBER_COOKIE) is None
    assert not is_signed_in(_only_remember_cookie(new_browser, remembered))


def test_sign_out_needs_a_post(client, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    assert client.get("/logout").status_code == 405
    assert is_signed_in(client)


def test_sign_out_leaves_the_other_sessions_of_the_account_alone(client, new_browser, make_account):
    make_account("alice@example.com")
    phone = new_browser()
    sign_in(client, "alice@example.com")
    sign_in(phone, "alice@example.com")

    _sign_out(client)

    assert is_signed_in(phone)


# -- remember me ---------------------------------------------------------------------------


def test_remember_cookie_alone_signs_the_browser_in(client, new_browser, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com", remember="y")

    browser = _only_remember_cookie(new_browser, cookie(client, REMEMBER_COOKIE))
    page = browser.get("/account/")

    assert page.status_code == 200
    assert "alice@example.com" in text(page)


def test_tampered_remember_cookie_signs_nobody_in(client, new_browser, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com", remember="y")
    token, _digest = cookie(client, REMEMBER_COOKIE).split("|")

    forged = _only_remember_cookie(new_browser, f"{token}|{'0' * 128}")

    assert not is_signed_in(forged)


def test_revoking_a_remembered_session_from_another_browser_stops_its_cookie(
    client, new_browser, make_account
):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com", remember="y")
    remembered = _only_remember_cookie(new_browser, cookie(client, REMEMBER_COOKIE))
    assert is_signed_in(remembered)
    laptop = new_browser("Alice's laptop")
    sign_in(laptop, "alice@example.com")

    (revoke,) = revoke_buttons(laptop.get("/account/sessions"))
    response = submit(laptop, revoke, {}, form_page="/account/sessions")

    assert response.status_code == 302
    assert not is_signed_in(remembered)
    assert not is_signed_in(client)
    assert is_signed_in(laptop)


# -- timeouts ------------------------------------------------------------------------------


def _age_session(db_session, account, **changes):
    (session,) = [s for s in sessions_of(db_session, account) if s.revoked_at is None]
    for name, value in changes.items():
        setattr(session, name, value)
    db_session.commit()
    return session


def test_session_idle_for_more_than_30_minutes_is_signed_out(client, make_account, db_session):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    _age_session(db_session, alice, last_seen_at=utcnow() - timedelta(minutes=31))

    assert not is_signed_in(client)
    (session,) = sessions_of(db_session, alice)
    assert session.revoked_reason == "idle"


def test_session_idle_for_less_than_30_minutes_stays_signed_in_and_is_refreshed(
    client, make_account, db_session
):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    _age_session(db_session, alice, last_seen_at=utcnow() - timedelta(minutes=29))

    assert is_signed_in(client)
    (session,) = sessions_of(db_session, alice)
    assert utcnow() - session.last_seen_at < timedelta(minutes=1)


def test_idle_session_stays_ended_when_activity_resumes(client, make_account, db_session):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    session = _age_session(db_session, alice, last_seen_at=utcnow() - timedelta(minutes=31))
    assert not is_signed_in(client)

    session.last_seen_at = utcnow()
    db_session.commit()

    assert not is_signed_in(client)


def test_remembered_session_is_not_subject_to_the_idle_timeout(client, make_account, db_session):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com", remember="y")
    _age_session(db_session, alice, last_seen_at=utcnow() - timedelta(days=3))

    assert is_signed_in(client)


@pytest.mark.parametrize("remember", [False, True])
def test_session_past_its_absolute_end_is_signed_out(
    client, new_browser, make_account, db_session, remember
):
    alice = make_account("alice@example.com")
    extra = {"remember": "y"} if remember else {}
    sign_in(client, "alice@example.com", **extra)
    remembered = cookie(client, REMEMBER_COOKIE)
    _age_session(db_session, alice, expires_at=utcnow() - timedelta(seconds=1))

    assert not is_signed_in(client)
    (session,) = sessions_of(db_session, alice)
    assert session.revoked_reason == "expired"
    if remembered:
        assert not is_signed_in(_only_remember_cookie(new_browser, remembered))


# -- the Sessions page ---------------------------------------------------------------------


def test_sessions_page_lists_every_signed_in_browser(client, new_browser, make_account):
    make_account("alice@example.com")
    phone = new_browser("Alice's phone")
    laptop = new_browser("Alice's laptop")
    sign_in(phone, "alice@example.com", remember="y")
    sign_in(laptop, "alice@example.com")

    page = laptop.get("/account/sessions")

    assert page.status_code == 200
    assert "Alice&#39;s phone" in text(page)
    assert "Alice&#39;s laptop" in text(page)
    assert text(page).count("This device") == 1
    assert len(revoke_buttons(page)) == 1  # the other one; this one uses Sign out


def test_sessions_page_leaves_out_ended_sessions(client, new_browser, make_account):
    make_account("alice@example.com")
    old = new_browser("Old browser")
    sign_in(old, "alice@example.com")
    _sign_out(old)
    laptop = new_browser("Alice's laptop")
    sign_in(laptop, "alice@example.com")

    page = laptop.get("/account/sessions")

    assert "Old browser" not in text(page)
    assert revoke_buttons(page) == []
    assert "You are not signed in anywhere else." in text(page)


def test_revoking_another_session_signs_that_browser_out(
    client, new_browser, make_account, db_session
):
    alice = make_account("alice@example.com")
    phone = new_browser("Alice's phone")
    sign_in(phone, "alice@example.com")
    sign_in(client, "alice@example.com")

    (revoke,) = revoke_buttons(client.get("/account/sessions"))
    response = submit(client, revoke, {}, form_page="/account/sessions")

    assert response.location == "/account/sessions"
    assert "That session has been signed out." in text(client.get("/account/sessions"))
    assert not is_signed_in(phone)
    assert is_signed_in(client)
    phone_session = sessions_of(db_session, alice)[0]
    assert phone_session.revoked_reason == "revoked_by_owner"
    assert "session_revoked" in event_kinds(db_session, alice)


def test_revoking_a_session_of_another_account_is_not_found_and_revokes_nothing(
    client, new_browser, make_account, db_session
):
    make_account("alice@example.com")
    bob = make_account("bob@example.com")
    bobs_browser = new_browser()
    sign_in(bobs_browser, "bob@example.com")
    (bobs_session,) = sessions_of(db_session, bob)
    sign_in(client, "alice@example.com")

    response = submit(
        client, f"/account/sessions/{bobs_session.id}/revoke", {}, form_page="/account/sessions"
    )

    assert response.status_code == 404
    assert is_signed_in(bobs_browser)
    assert sessions_of(db_session, bob)[0].revoked_at is None


def test_revoking_an_unknown_session_id_is_not_found(client, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    response = submit(client, "/account/sessions/987654/revoke", {}, form_page="/account/sessions")

    assert response.status_code == 404


def test_revoking_the_current_session_from_the_list_is_refused_with_advice(
    client, make_account, db_session
):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    (current,) = sessions_of(db_session, alice)

    response = submit(
        client, f"/account/sessions/{current.id}/revoke", {}, form_page="/account/sessions"
    )

    assert response.status_code == 302
    assert "To end this session, use Sign out." in text(client.get("/account/sessions"))
    assert is_signed_in(client)


def test_sign_out_all_other_sessions_keeps_only_this_one(
    client, new_browser, make_account, db_session
):
    alice = make_account("alice@example.com")
    others = [new_browser("phone"), new_browser("tablet")]
    for browser in others:
        sign_in(browser, "alice@example.com", remember="y")
    remembered = [cookie(b, REMEMBER_COOKIE) for b in others]
    sign_in(client, "alice@example.com")

    response = submit(client, "/account/sessions/revoke-others", {}, form_page="/account/sessions")

    assert response.location == "/account/sessions"
    page = client.get("/account/sessions")
    assert "All your other sessions have been signed out." in text(page)
    assert revoke_buttons(page) == []
    assert is_signed_in(client)
    for browser, value in zip(others, remembered, strict=True):
        assert not is_signed_in(browser)
        assert not is_signed_in(_only_remember_cookie(new_browser, value))
    live = [s for s in sessions_of(db_session, alice) if s.revoked_at is None]
    assert len(live) == 1


def test_sign_out_all_other_sessions_with_none_says_so(client, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")

    submit(client, "/account/sessions/revoke-others", {}, form_page="/account/sessions")

    assert "There was no other session to sign out." in text(client.get("/account/sessions"))
    assert is_signed_in(client)


def test_account_pages_send_a_signed_out_visitor_to_sign_in(client):
    for path in ["/account/", "/account/sessions", "/account/activity", "/account/password"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response.location.startswith("/login?next=")


# -- readable devices -----------------------------------------------------------------------

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_the_sessions_page_names_browser_and_device_and_keeps_the_raw_string(
    new_browser, make_account
):
    make_account("alice@example.com")
    laptop = new_browser(FIREFOX_WINDOWS)
    phone = new_browser(SAFARI_IPHONE)
    sign_in(laptop, "alice@example.com")
    sign_in(phone, "alice@example.com")

    html = text(laptop.get("/account/sessions"))

    assert "Firefox 133 on Windows" in html
    assert "Safari on iPhone" in html
    assert '<code class="break">' + SAFARI_IPHONE + "</code>" in html.replace("&#34;", '"')


def test_an_unrecognised_user_agent_is_shown_as_it_is(new_browser, make_account):
    make_account("alice@example.com")
    odd = new_browser("SomethingUnheardOf")
    sign_in(odd, "alice@example.com")

    html = text(odd.get("/account/sessions"))

    assert "SomethingUnheardOf" in html
