"""Confirming the email address from the emailed link signs a consumer in at once, in a
new session; staff still go through their second factor."""

from __future__ import annotations

from tests.accounts.flows import (
    SESSION_COOKIE,
    account_by_email,
    cookie,
    is_signed_in,
    register,
    sessions_of,
)
from tests.conftest import PASSWORD, submit
from tests.mailbox import link_in
from vrm_portal.accounts.models import StaffRole


def test_a_consumer_confirming_the_address_is_signed_in_in_a_new_session(
    client, mailbox, db_session
):
    register(client, "carol@example.com")
    link = link_in(mailbox.wait_for("carol@example.com"), "/verify-email/")
    client.get(link)
    before = cookie(client, SESSION_COOKIE)

    response = submit(client, link, {}, form_page=link)

    assert response.status_code == 302
    assert response.location == "/account/"
    assert cookie(client, SESSION_COOKIE) != before
    page = client.get("/account/")
    assert page.status_code == 200
    assert "Your email address is confirmed." in page.get_data(as_text=True)
    assert "You are signed in." in page.get_data(as_text=True)
    carol = account_by_email(db_session, "carol@example.com")
    assert carol is not None
    assert carol.email_verified_at is not None
    assert len(sessions_of(db_session, carol)) == 1


def test_staff_confirming_the_address_are_sent_to_sign_in_with_their_second_factor(
    client, make_account, mailbox, db_session
):
    staff = make_account("dpo@example.com", verified=False, role=StaffRole.DPO)
    submit(client, "/login", {"email": "dpo@example.com", "password": PASSWORD})
    link = link_in(mailbox.wait_for("dpo@example.com"), "/verify-email/")

    response = submit(client, link, {}, form_page=link)

    assert response.status_code == 302
    assert response.location == "/login"
    assert not is_signed_in(client)
    assert sessions_of(db_session, staff) == []
