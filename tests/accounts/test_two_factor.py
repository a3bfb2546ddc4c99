"""Staff must pass a TOTP second step; consumers are not asked for one."""

from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import select

from tests.conftest import PASSWORD, submit
from vrm_portal.accounts.browser_session import PENDING_KEY
from vrm_portal.accounts.models import Account, AccountEvent, StaffRole


def _password_step(client, email):
    return submit(client, "/login", {"email": email, "password": PASSWORD})


def _secret_on_page(client) -> str:
    page = client.get("/login/two-factor/setup").get_data(as_text=True)
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert match, page
    return match.group(1).replace(" ", "")


def _code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def _enrol(client, email) -> str:
    assert _password_step(client, email).location == "/login/two-factor/setup"
    secret = _secret_on_page(client)
    response = submit(client, "/login/two-factor/setup", {"code": _code(secret)})
    assert response.status_code == 302
    return secret


def test_staff_password_alone_does_not_sign_in(client, make_account):
    make_account("dpo@example.com", role=StaffRole.DPO)
    response = _password_step(client, "dpo@example.com")
    assert response.location == "/login/two-factor/setup"
    assert client.get("/account/").status_code == 302


def test_staff_enrol_an_app_then_are_signed_in(client, make_account, db_session):
    make_account("dpo@example.com", role=StaffRole.DPO)
    _enrol(client, "dpo@example.com")
    page = client.get("/account/")
    assert page.status_code == 200
    assert "Two-step verification is on for your account." in page.get_data(as_text=True)
    account = db_session.scalars(select(Account).where(Account.email == "dpo@example.com")).one()
    db_session.refresh(account)
    assert account.totp_enabled_at is not None


def test_setup_page_shows_a_qr_code_and_the_key(client, make_account):
    make_account("admin@example.com", role=StaffRole.ADMIN)
    _password_step(client, "admin@example.com")
    page = client.get("/login/two-factor/setup").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page
    assert 'autocomplete="one-time-code"' in page


def test_a_wrong_enrolment_code_is_refused_and_enables_nothing(client, make_account, db_session):
    make_account("dpo@example.com", role=StaffRole.DPO)
    _password_step(client, "dpo@example.com")
    secret = _secret_on_page(client)
    wrong = f"{(int(_code(secret)) + 1) % 1_000_000:06d}"
    response = submit(client, "/login/two-factor/setup", {"code": wrong})
    assert response.status_code == 422
    assert "This code is not right" in response.get_data(as_text=True)
    assert client.get("/account/").status_code == 302
    account = db_session.scalars(select(Account).where(Account.email == "dpo@example.com")).one()
    assert account.totp_enabled_at is None


def test_enrolled_staff_give_a_code_at_each_sign_in(client, make_account):
    make_account("dpo@example.com", role=StaffRole.DPO)
    secret = _enrol(client, "dpo@example.com")
    submit(client, "/logout", {}, form_page="/account/")
    assert _password_step(client, "dpo@example.com").location == "/login/two-factor"
    response = submit(client, "/login/two-factor", {"code": _code(secret, 1)})
    assert response.status_code == 302
    assert client.get("/account/").status_code == 200


def test_a_code_is_accepted_only_once(client, make_account):
    make_account("dpo@example.com", role=StaffRole.DPO)
    secret = _enrol(client, "dpo@example.com")
    submit(client, "/logout", {}, form_page="/account/")
    _password_step(client, "dpo@example.com")
    code = _code(secret, 1)
    assert submit(client, "/login/two-factor", {"code": code}).status_code == 302
    submit(client, "/logout", {}, form_page="/account/")
    _password_step(client, "dpo@example.com")
    replay = submit(client, "/login/two-factor", {"code": code})
    assert replay.status_code == 422
    assert "already used" in replay.get_data(as_text=True)
    assert client.get("/account/").status_code == 302


def test_wrong_codes_are_recorded_in_the_security_history(client, make_account, db_session):
    account = make_account("dpo@example.com", role=StaffRole.DPO)
    _enrol(client, "dpo@example.com")
    submit(client, "/logout", {}, form_page="/account/")
    _password_step(client, "dpo@example.com")
    submit(client, "/login/two-factor", {"code": "000000x"})
    kinds = db_session.scalars(
        select(AccountEvent.kind).where(AccountEvent.account_id == account.id)
    ).all()
    assert "two_factor_failed" in kinds


def test_the_code_step_expires(client, make_account):
    make_account("dpo@example.com", role=StaffRole.DPO)
    _password_step(client, "dpo@example.com")
    with client.session_transaction() as session:
        session[PENDING_KEY] = {**session[PENDING_KEY], "since": int(time.time()) - 3600}
    response = client.get("/login/two-factor/setup")
    assert response.status_code == 302
    assert response.location.startswith("/login")
    assert "took too long" in client.get("/login").get_data(as_text=True)


def test_the_code_step_without_a_password_step_goes_back_to_sign_in(client):
    assert client.get("/login/two-factor").location == "/login"


def test_consumers_are_not_asked_for_a_code(client, make_account):
    make_account("alice@example.com")
    assert _password_step(client, "alice@example.com").location == "/account/"


def test_operator_can_reset_a_lost_authenticator(app, client, make_account, db_session):
    make_account("dpo@example.com", role=StaffRole.DPO)
    _enrol(client, "dpo@example.com")
    result = app.test_cli_runner().invoke(
        args=["vrm", "reset-two-factor", "--email", "dpo@example.com"]
    )
    assert result.exit_code == 0, result.output
    submit(client, "/logout", {}, form_page="/account/")
    assert _password_step(client, "dpo@example.com").location == "/login/two-factor/setup"
