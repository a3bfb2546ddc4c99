"""Attacks on and failures of the round trip through the provider (DESIGN §7): each ends
on a clear page with a way back, never a 500, and nobody is signed in."""

from __future__ import annotations

import re
import time
from html import unescape

import requests

from tests.accounts.flows import count_accounts, is_signed_in, text
from tests.accounts.social.flows import at_provider, back_to_portal, continue_with, start
from tests.conftest import SOCIAL_TIMEOUT
from tests.identity_provider import DOWN_PROVIDER, PROVIDER, SECOND_PROVIDER


def assert_refused(response, status, phrase, db_session, client):
    body = text(response)
    assert response.status_code == status, body
    assert phrase in body
    assert 'href="/login"' in body  # a way back
    assert not is_signed_in(client)
    assert count_accounts(db_session) == 0


def test_an_answer_with_a_state_this_browser_never_sent_is_refused(client, db_session, idp):
    location = at_provider(start(client))
    forged = location.replace("state=", "state=forged")
    response = back_to_portal(client, forged)
    assert_refused(response, 400, "could not match the answer", db_session, client)


def test_an_answer_meant_for_another_browser_is_refused(client, new_browser, db_session, idp):
    """Login CSRF: an attacker's own code and state, planted in the victim's browser."""
    attacker = new_browser()
    location = at_provider(start(attacker), email="mallory@example.com")
    response = back_to_portal(client, location)
    assert_refused(response, 400, "could not match the answer", db_session, client)


def test_an_answer_cannot_be_used_twice(client, new_browser, db_session, idp):
    location = at_provider(start(client), subject="sam")
    assert back_to_portal(client, location).status_code == 302
    submit_logout(client)
    again = back_to_portal(client, location)
    assert again.status_code == 400
    assert not is_signed_in(client)


def test_a_replayed_id_token_fails_the_nonce_check(client, new_browser, db_session, idp):
    continue_with(new_browser(), email="first@example.com", subject="first")
    idp.idp.quirks.replay_id_token = True  # the next answer carries the previous ID token

    response = continue_with(client, email="second@example.com", subject="second")

    assert response.status_code == 400
    assert "did not pass our security checks" in text(response)
    assert not is_signed_in(client)
    assert count_accounts(db_session) == 1


def test_an_id_token_from_another_issuer_is_refused(client, db_session, idp):
    idp.idp.quirks.issuer = "https://evil.example"
    response = continue_with(client)
    assert_refused(response, 400, "did not pass our security checks", db_session, client)


def test_an_id_token_for_another_client_is_refused(client, db_session, idp):
    idp.idp.quirks.audience = "some-other-client"
    response = continue_with(client)
    assert_refused(response, 400, "did not pass our security checks", db_session, client)


def test_an_authorization_response_naming_another_issuer_is_refused(client, db_session, idp):
    location = at_provider(start(client))
    mixed_up = location.replace("iss=", "iss=https%3A%2F%2Fevil.example&was=")
    response = back_to_portal(client, mixed_up)
    assert_refused(response, 400, "did not pass our security checks", db_session, client)


def test_cancelling_at_the_provider_lands_on_a_clear_page(client, db_session, idp):
    response = back_to_portal(client, at_provider(start(client), cancel=True))
    assert_refused(response, 400, "You cancelled at Test ID", db_session, client)
    assert f'href="/auth/oauth/{PROVIDER}/start"' in text(response)  # try again


def test_a_provider_that_is_down_lands_on_a_clear_page(client, db_session):
    response = client.get(f"/auth/oauth/{DOWN_PROVIDER}/start")
    assert_refused(response, 502, "We could not reach Down ID", db_session, client)


def test_a_slow_provider_lands_on_a_clear_page(client, db_session, idp):
    location = at_provider(start(client))
    idp.idp.quirks.delay_seconds = SOCIAL_TIMEOUT + 1
    began = time.monotonic()
    response = back_to_portal(client, location)
    waited = time.monotonic() - began
    assert_refused(response, 504, "took too long to answer", db_session, client)
    assert waited < SOCIAL_TIMEOUT + 1


def test_an_unknown_provider_is_not_found(client):
    assert client.get("/auth/oauth/nope/start").status_code == 404
    assert client.get("/auth/oauth/nope/callback?code=x&state=y").status_code == 404


def test_two_tabs_can_each_finish_in_any_order(client, db_session, idp):
    first_tab = at_provider(start(client), email="sam@example.com", subject="sam")
    second_tab = at_provider(start(client, SECOND_PROVIDER), email="sam@example.com", subject="s2")
    third_tab = at_provider(start(client), email="sam@example.com", subject="sam")

    # The second tab finishes first and creates the account; the others still finish.
    assert back_to_portal(client, second_tab).location == "/account/"
    assert back_to_portal(client, third_tab).status_code == 302  # pending link: proves it
    assert back_to_portal(client, first_tab).status_code == 302
    assert count_accounts(db_session) == 1


def test_two_tabs_of_the_same_provider(client, db_session, idp):
    first_tab = at_provider(start(client), subject="sam")
    second_tab = at_provider(start(client), subject="sam")
    assert back_to_portal(client, second_tab).location == "/account/"
    assert back_to_portal(client, first_tab).location == "/account/"
    assert is_signed_in(client)
    assert count_accounts(db_session) == 1


def test_the_built_in_development_provider_is_not_served_outside_development(client):
    assert client.get("/dev-idp/.well-known/openid-configuration").status_code == 404
    assert client.get("/auth/oauth/dev/start").status_code == 404


def submit_logout(client):
    from tests.conftest import submit

    submit(client, "/logout", {}, form_page="/account/")


def test_a_form_post_answer_is_relayed_to_the_callback_with_the_session(
    client, new_browser, db_session, idp
):
    """Apple answers with a cross-site form post, which carries no SameSite=Lax cookie:
    the portal hands it on as a same-site GET, which does."""
    authorize_url = start(client) + "&response_mode=form_post"
    page = requests.get(authorize_url, timeout=5)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    fields = {k: unescape(v) for k, v in fields.items()}
    answer = requests.post(
        authorize_url,
        data={**fields, "email": "sam@example.com", "email_verified": "yes", "action": "ok"},
        timeout=5,
    )
    posted = {
        k: unescape(v)
        for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', answer.text)
    }
    assert set(posted) >= {"code", "state"}

    relay = new_browser().post(f"/auth/oauth/{PROVIDER}/callback", data=posted)  # no cookies
    assert relay.status_code == 200
    target = unescape(re.search(r'content="0;url=([^"]+)"', text(relay)).group(1))
    assert not is_signed_in(new_browser())

    response = client.get(target)
    assert response.location == "/account/"
    assert is_signed_in(client)
