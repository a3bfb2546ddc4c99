"""Staff must pass a TOTP second step; consumers are not asked for one."""

from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_token, submit
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
    assert client.get("/account/sessions").status_code == 302


def test_staff_enrol_an_app_then_are_signed_in(client, make_account, db_session):
    make_account("dpo@example.com", role=StaffRole.DPO)
    _enrol(client, "dpo@example.com")
    # Staff land on their console, not on the consumer's account overview.
    landing = client.get("/account/")
    assert landing.status_code == 302
    assert landing.location == "/office/"
    page = client.get("/office/")
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
    assert client.get("/account/sessions").status_code == 302
    account = db_session.scalars(select(Account).where(Account.email == "dpo@example.com")).one()
    assert account.totp_enabled_at is None


def test_enrolled_staff_give_a_code_at_each_sign_in(client, make_account):
    make_account("dpo@example.com", role=StaffRole.DPO)
    secret = _enrol(client, "dpo@example.com")
    submit(client, "/logout", {}, form_page="/account/sessions")
    assert _password_step(client, "dpo@example.com").location == "/login/two-factor"
    response = submit(client, "/login/two-factor", {"code": _code(secret, 1)})
    assert response.status_code == 302
    assert client.get("/account/sessions").status_code == 200


def test_a_code_is_accepted_only_once(client, make_account):
    make_account("dpo@example.com", role=StaffRole.DPO)
    secret = _enrol(client, "dpo@example.com")
    submit(client, "/logout", {}, form_page="/account/sessions")
    _password_step(client, "dpo@example.com")
    code = _code(secret, 1)
    assert submit(client, "/login/two-factor", {"code": code}).status_code == 302
    submit(client, "/logout", {}, form_page="/account/sessions")
    _password_step(client, "dpo@example.com")
    replay = submit(client, "/login/two-factor", {"code": code})
    assert replay.status_code == 422
    assert "already used" in replay.get_data(as_text=True)
    assert client.get("/account/sessions").status_code == 302


def test_wrong_codes_are_recorded_in_the_security_history(client, make_account, db_session):
    account = make_account("dpo@example.com", role=StaffRole.DPO)
    _enrol(client, "dpo@example.com")
    submit(client, "/logout", {}, form_page="/account/sessions")
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
    submit(client, "/logout", {}, form_page="/account/sessions")
    assert _password_step(client, "dpo@example.com").location == "/login/two-factor/setup"


# ---- each enrolment attempt has its own short-lived key (security test "Account security")


ENROLMENT_KEY = "totp_enrolment"


def _staff_account(db_session, email="dpo@example.com"):
    return db_session.scalars(select(Account).where(Account.email == email)).one()


def _enabled(db_session, email="dpo@example.com") -> bool:
    db_session.expire_all()
    return _staff_account(db_session, email).totp_enabled_at is not None


def test_someone_past_the_password_once_does_not_learn_the_owners_key(
    client, new_browser, make_account, db_session
):
    make_account("dpo@example.com", role=StaffRole.DPO)
    intruder = new_browser()
    _password_step(intruder, "dpo@example.com")
    intruders_key = _secret_on_page(intruder)

    _password_step(client, "dpo@example.com")
    owners_key = _secret_on_page(client)

    assert owners_key != intruders_key
    refused = submit(client, "/login/two-factor/setup", {"code": _code(intruders_key)})
    assert refused.status_code == 422
    assert not _enabled(db_session)
    assert submit(client, "/login/two-factor/setup", {"code": _code(owners_key)}).status_code == 302
    db_session.expire_all()
    assert _staff_account(db_session).totp_secret == owners_key
    # The intruder's key opens nothing later either.
    _password_step(intruder, "dpo@example.com")
    later = submit(intruder, "/login/two-factor", {"code": _code(intruders_key, 1)})
    assert later.status_code == 422
    assert intruder.get("/account/sessions").status_code == 302


def test_each_sign_in_gets_a_new_key_and_the_earlier_one_stops_working(
    client, make_account, db_session
):
    make_account("dpo@example.com", role=StaffRole.DPO)
    _password_step(client, "dpo@example.com")
    first = _secret_on_page(client)
    assert _secret_on_page(client) == first  # shown again during the same sign-in

    _password_step(client, "dpo@example.com")
    second = _secret_on_page(client)

    assert second != first
    response = submit(client, "/login/two-factor/setup", {"code": _code(first)})
    assert response.status_code == 422
    assert second in response.get_data(as_text=True).replace(" ", "")
    assert first not in response.get_data(as_text=True).replace(" ", "")
    assert not _enabled(db_session)


def test_showing_the_setup_page_stores_no_secret(client, make_account, db_session):
    make_account("dpo@example.com", role=StaffRole.DPO)
    _password_step(client, "dpo@example.com")
    _secret_on_page(client)
    _secret_on_page(client)

    db_session.expire_all()
    assert _staff_account(db_session).totp_secret is None


def test_an_enrolment_key_lapses_after_ten_minutes(client, make_account, db_session):
    make_account("dpo@example.com", role=StaffRole.DPO)
    _password_step(client, "dpo@example.com")
    key = _secret_on_page(client)
    token = csrf_token(client, "/login/two-factor/setup")  # the page stays open...
    with client.session_transaction() as session:
        assert 590 <= session[ENROLMENT_KEY]["expires"] - time.time() <= 600
        session[ENROLMENT_KEY] = {**session[ENROLMENT_KEY], "expires": int(time.time()) - 1}

    # ... and the code is sent once the key has lapsed.
    response = client.post(
        "/login/two-factor/setup", data={"csrf_token": token, "code": _code(key)}
    )

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "This key has expired." in page
    new_key = re.search(r'id="totp-secret-plain">([A-Z2-7]+)<', page).group(1)
    assert new_key != key
    assert not _enabled(db_session)
    assert submit(client, "/login/two-factor/setup", {"code": _code(new_key)}).status_code == 302


def test_an_enrolment_copied_from_another_sign_in_is_not_accepted(
    client, new_browser, make_account, db_session
):
    make_account("dpo@example.com", role=StaffRole.DPO)
    intruder = new_browser()
    _password_step(intruder, "dpo@example.com")
    intruders_key = _secret_on_page(intruder)
    with intruder.session_transaction() as session:
        copied = dict(session[ENROLMENT_KEY])

    _password_step(client, "dpo@example.com")
    with client.session_transaction() as session:
        session[ENROLMENT_KEY] = copied

    assert _secret_on_page(client) != intruders_key
    refused = submit(client, "/login/two-factor/setup", {"code": _code(intruders_key)})
    assert refused.status_code == 422
    assert not _enabled(db_session)


def test_a_secret_stored_before_enrolment_is_never_shown_nor_accepted(
    client, make_account, db_session
):
    # What the setup page used to store the first time it was shown.
    account = make_account("dpo@example.com", role=StaffRole.DPO)
    stale = pyotp.random_base32()
    account.totp_secret = stale
    db_session.commit()

    _password_step(client, "dpo@example.com")

    assert _secret_on_page(client) != stale
    assert submit(client, "/login/two-factor/setup", {"code": _code(stale)}).status_code == 422
    assert not _enabled(db_session)


def test_the_key_is_also_given_without_spaces(client, make_account):
    make_account("dpo@example.com", role=StaffRole.DPO)
    _password_step(client, "dpo@example.com")
    page = client.get("/login/two-factor/setup").get_data(as_text=True)

    grouped = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1)
    plain = re.search(r'id="totp-secret-plain">([A-Z2-7]+)<', page).group(1)
    assert " " in grouped
    assert plain == grouped.replace(" ", "")
