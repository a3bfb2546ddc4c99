"""The attention-email setting: the account page (signed in, CSRF) and the digest's
one-click off link (no sign-in; GET changes nothing, POST turns the emails off)."""

from __future__ import annotations

import re

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import delete, select

from tests.conftest import csrf_token, submit
from tests.mailbox import link_in
from tests.reminders.conftest import run_daily
from vrm_portal.accounts.models import Account
from vrm_portal.reminders.models import ReminderDigest

SETTING = "/account/attention-emails"
NOT_VALID = "This link is not valid. Check that you opened the whole link from the email."
CHECKBOX = re.compile(r'<input[^>]*name="attention_emails"[^>]*>')


def setting_of(db_session, account: Account) -> bool:
    db_session.refresh(account)
    return account.attention_emails


def checkbox(html: str) -> str:
    match = CHECKBOX.search(html)
    assert match, html
    return match.group(0)


# ---- the account page ---------------------------------------------------------------


def test_the_setting_is_on_by_default_and_labelled(client, alice):
    html = client.get(SETTING).get_data(as_text=True)
    assert "checked" in checkbox(html)
    assert '<label class="checkbox__label" for="attention_emails">' in html
    assert "Tell me by email when a consent needs my attention" in html


def test_turning_it_off_then_on_again(client, alice, db_session):
    response = submit(client, SETTING, {})  # an unticked box sends nothing
    assert response.status_code == 303
    assert setting_of(db_session, alice) is False
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved: we will no longer email you when a consent needs your attention." in html
    assert "checked" not in checkbox(html)

    response = submit(client, SETTING, {"attention_emails": "y"})
    assert response.status_code == 303
    assert setting_of(db_session, alice) is True
    html = client.get(SETTING).get_data(as_text=True)
    assert "Saved: we will email you when a consent needs your attention." in html


def test_saving_without_a_change_says_so(client, alice, db_session):
    submit(client, SETTING, {"attention_emails": "y"})
    html = client.get(SETTING).get_data(as_text=True)
    assert "You did not change anything, so there was nothing to save." in html
    assert setting_of(db_session, alice) is True


def test_the_page_refuses_a_post_without_its_csrf_token(client, alice, db_session):
    response = client.post(SETTING, data={})
    assert response.status_code == 400
    assert setting_of(db_session, alice) is True


def test_the_page_needs_signing_in(client):
    response = client.get(SETTING)
    assert response.status_code == 302
    assert response.location.startswith("/login")


# ---- the one-click off link ---------------------------------------------------------


@pytest.fixture
def off_path(app, db_session, make_account, give, mailbox) -> str:
    """The off link of a digest sent to Alice (who is not signed in anywhere)."""
    alice = make_account("alice@example.com")
    give(alice, "maison-berlingot", "sms-offers", days_ago=350)
    run_daily(app, db_session)
    return link_in(mailbox.wait_for("alice@example.com"), "/attention-emails/off/")


def _alice(db_session) -> Account:
    return db_session.scalars(
        select(Account)
        .where(Account.email == "alice@example.com")
        .execution_options(populate_existing=True)
    ).one()


def test_opening_the_link_changes_nothing_and_shows_one_button(new_browser, db_session, off_path):
    page = new_browser().get(off_path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Stop emails about your consents" in html
    assert html.count('<button type="submit" class="button">') == 1
    assert "Stop these emails" in html
    assert _alice(db_session).attention_emails is True


def test_pressing_the_button_turns_the_emails_off_without_signing_in(
    app, new_browser, db_session, mailbox, off_path
):
    response = new_browser().post(off_path)  # no session, no CSRF token
    assert response.status_code == 200
    assert "These emails are off" in response.get_data(as_text=True)
    assert _alice(db_session).attention_emails is False
    # Tomorrow's run (simulated: today's digest is forgotten) sends nothing.
    db_session.execute(delete(ReminderDigest))
    db_session.commit()
    mailbox.clear()
    assert run_daily(app, db_session).result == {"planned": 0}
    assert mailbox.messages == []


def test_the_mail_clients_one_click_post_turns_the_emails_off(new_browser, db_session, off_path):
    response = new_browser().post(
        off_path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert _alice(db_session).attention_emails is False


def _tampered(path: str) -> str:
    prefix, token = path.rsplit("/", 1)
    flipped = ("A" if token[3] != "A" else "B").join((token[:3], token[4:]))
    return f"{prefix}/{flipped}"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_damaged_link_is_a_clean_not_found_page(new_browser, db_session, off_path, method):
    browser = new_browser()
    for path in (_tampered(off_path), off_path[:-6], "/attention-emails/off/x"):
        response = getattr(browser, method)(path)
        assert response.status_code == 404, path
        html = response.get_data(as_text=True)
        assert "This link cannot be used" in html
        assert NOT_VALID in html
    assert _alice(db_session).attention_emails is True


def test_a_token_signed_for_something_else_is_refused(app, new_browser, db_session, off_path):
    alice = _alice(db_session)
    other = URLSafeSerializer(app.config["SECRET_KEY"], salt="another-purpose").dumps(
        [alice.id, off_path]
    )
    response = new_browser().post(f"/attention-emails/off/{other}")
    assert response.status_code == 404
    assert _alice(db_session).attention_emails is True


def test_a_link_sent_to_a_former_address_no_longer_works(new_browser, db_session, off_path):
    alice = _alice(db_session)
    alice.email = "alice.new@example.com"
    db_session.commit()
    response = new_browser().post(off_path)
    assert response.status_code == 404
    db_session.refresh(alice)
    assert alice.attention_emails is True


def test_the_page_form_of_the_settings_still_needs_csrf_after_the_exemption(client, alice):
    """The exemption is for the off link only: the account page keeps its CSRF check."""
    token = csrf_token(client, SETTING)
    assert client.post(SETTING, data={"csrf_token": token[:-2] + "xx"}).status_code == 400
