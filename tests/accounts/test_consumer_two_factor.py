"""A consumer's optional second step: an authenticator app, with recovery codes."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.accounts.flows import event_kinds, is_signed_in, reloaded, text
from tests.accounts.social.flows import at_provider, back_to_portal, continue_with, start_link
from tests.conftest import PASSWORD, submit
from vrm_portal.accounts import recovery_codes
from vrm_portal.accounts.models import Account, AuthSession, RecoveryCode, StaffRole
from vrm_portal.accounts.second_factor import second_step_required
from vrm_portal.clock import utcnow

TURN_ON = "/account/two-step/app"
CODE_PAGE = "/login/two-factor"
RECOVERY_PAGE = "/login/two-factor/recovery"


def key_on_page(client: FlaskClient) -> str:
    page = text(client.get(TURN_ON))
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert match, page
    return match.group(1).replace(" ", "")


def codes_on(response) -> list[str]:
    return re.findall(r"<li><code>([0-9a-z]{5}-[0-9a-z]{5})</code></li>", text(response))


def turn_on(client: FlaskClient) -> tuple[pyotp.TOTP, list[str]]:
    app = pyotp.TOTP(key_on_page(client))
    response = submit(client, TURN_ON, {"code": app.now()})
    assert response.status_code == 200, text(response)
    return app, codes_on(response)


def sign_out(client: FlaskClient) -> None:
    submit(client, "/logout", {}, form_page="/account/sessions")


def password_step(client: FlaskClient, email: str = "alice@example.com"):
    return submit(client, "/login", {"email": email, "password": PASSWORD})


def next_code(app: pyotp.TOTP) -> str:
    return app.at(time.time() + 30)


@pytest.fixture
def alice_with_app(client, alice) -> tuple[Account, pyotp.TOTP, list[str]]:
    app, codes = turn_on(client)
    sign_out(client)
    return alice, app, codes


# ---- turning it on ----------------------------------------------------------------------


def test_turn_on_shows_ten_recovery_codes_once(client, alice, db_session):
    assert "Turn on two-step verification" in text(client.get("/account/sign-in-methods"))
    _app, codes = turn_on(client)

    assert len(codes) == 10
    assert len(set(codes)) == 10
    account = reloaded(db_session, alice)
    assert account.has_two_factor
    assert second_step_required(account)
    assert event_kinds(db_session, alice)[-2:] == ["two_factor_enabled", "recovery_codes_created"]
    # Shown once: the page is gone, and the database has only digests.
    again = client.get(TURN_ON)
    assert again.status_code == 302
    assert codes_on(client.get("/account/sign-in-methods")) == []
    stored = db_session.scalars(
        select(RecoveryCode.code_hash).where(RecoveryCode.account_id == alice.id)
    ).all()
    assert len(stored) == 10
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in stored)
    assert not {c.replace("-", "") for c in codes} & set(stored)
    assert "You have 10 unused codes." in text(client.get("/account/sign-in-methods"))


def test_a_wrong_first_code_turns_nothing_on(client, alice, db_session):
    key = key_on_page(client)
    wrong = f"{(int(pyotp.TOTP(key).now()) + 1) % 1_000_000:06d}"
    response = submit(client, TURN_ON, {"code": wrong})
    assert response.status_code == 422
    assert "This code is not right" in text(response)
    assert not reloaded(db_session, alice).has_two_factor
    # The page keeps the key being enrolled, so that the next code can be typed.
    assert f'id="totp-secret">{" ".join(key[i : i + 4] for i in range(0, len(key), 4))}<' in text(
        response
    )


def test_the_session_cookie_never_holds_the_key(app, client, alice):
    key = key_on_page(client)
    cookie = client.get_cookie("vrm_session").value
    content = app.session_interface.get_signing_serializer(app).loads(cookie)
    assert key not in str(content)


def test_turning_on_long_after_signing_in_asks_to_confirm_it_is_you(client, alice, db_session):
    db_session.execute(
        update(AuthSession)
        .where(AuthSession.account_id == alice.id)
        .values(created_at=utcnow() - timedelta(hours=1))
    )
    db_session.commit()
    response = client.get(TURN_ON)
    assert response.location == "/account/confirm-access?next=/account/two-step/app"


# ---- signing in with it -----------------------------------------------------------------


def test_with_the_app_on_the_password_alone_does_not_sign_in(client, alice_with_app):
    _alice, app, _codes = alice_with_app
    assert password_step(client).location == CODE_PAGE
    assert not is_signed_in(client)
    page = text(client.get(CODE_PAGE))
    assert "Use a recovery code" in page
    assert "Ask an administrator" not in page
    response = submit(client, CODE_PAGE, {"code": next_code(app)})
    assert response.status_code == 302
    assert is_signed_in(client)


def test_who_passes_a_second_step():
    consumer = Account(email="c@example.com", staff_role=None)
    assert not second_step_required(consumer)
    consumer.totp_secret, consumer.totp_enabled_at = "A" * 32, utcnow()
    assert second_step_required(consumer)
    assert second_step_required(Account(email="s@example.com", staff_role="dpo"))


def test_a_provider_sign_in_also_asks_for_the_second_step(
    client, alice, identity_provider, db_session
):
    identity_provider.reset()
    link = back_to_portal(
        client, at_provider(start_link(client), email="alice@example.com", subject="alice-1")
    )
    assert link.location == "/account/sign-in-methods"
    app, _codes = turn_on(client)
    sign_out(client)

    response = continue_with(client, email="alice@example.com", subject="alice-1")
    assert response.location == CODE_PAGE
    assert not is_signed_in(client)
    assert submit(client, CODE_PAGE, {"code": next_code(app)}).status_code == 302
    assert is_signed_in(client)


def test_a_recovery_code_replaces_the_code_once(client, alice_with_app, db_session):
    alice, _app, codes = alice_with_app
    password_step(client)
    response = submit(client, RECOVERY_PAGE, {"code": codes[0]})
    assert response.status_code == 302
    assert "You used a recovery code: 9 are left." in text(client.get("/account/"))
    assert is_signed_in(client)
    assert event_kinds(db_session, alice)[-2:] == ["recovery_code_used", "signed_in"]

    sign_out(client)
    password_step(client)
    replay = submit(client, RECOVERY_PAGE, {"code": codes[0]})
    assert replay.status_code == 422
    assert "used already" in text(replay)
    assert not is_signed_in(client)
    assert event_kinds(db_session, alice)[-1] == "two_factor_failed"


def test_recovery_codes_are_read_generously(client, alice_with_app):
    _alice, _app, codes = alice_with_app
    password_step(client)
    typed = " " + codes[1].upper().replace("-", " ") + " "
    assert submit(client, RECOVERY_PAGE, {"code": typed}).status_code == 302


def test_a_wrong_recovery_code_is_refused(client, alice_with_app):
    password_step(client)
    for wrong in ("00000-00000", "nonsense", ""):
        response = submit(client, RECOVERY_PAGE, {"code": wrong})
        assert response.status_code == 422
    assert not is_signed_in(client)


def test_the_recovery_page_needs_the_password_step(client, alice_with_app):
    assert client.get(RECOVERY_PAGE).location == "/login"


def test_new_codes_replace_the_old_ones(client, alice_with_app, db_session):
    alice, app, old_codes = alice_with_app
    password_step(client)
    submit(client, CODE_PAGE, {"code": next_code(app)})
    assert "Your 10 unused codes will stop working." in text(
        client.get("/account/two-step/recovery-codes")
    )
    response = submit(client, "/account/two-step/recovery-codes", {})
    new_codes = codes_on(response)
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)
    assert event_kinds(db_session, alice)[-1] == "recovery_codes_created"
    sign_out(client)

    password_step(client)
    assert submit(client, RECOVERY_PAGE, {"code": old_codes[2]}).status_code == 422
    assert submit(client, RECOVERY_PAGE, {"code": new_codes[2]}).status_code == 302


def test_few_codes_left_says_to_make_new_ones(client, alice_with_app, db_session):
    alice, _app, codes = alice_with_app
    for code in codes[:8]:
        recovery_codes.use_code(db_session, alice, code)
    db_session.commit()
    password_step(client)
    assert submit(client, RECOVERY_PAGE, {"code": codes[8]}).status_code == 302
    page = text(client.get("/account/"))
    assert "You used a recovery code: 1 is left." in page
    assert "Make new recovery codes" in page


# ---- turning it off ---------------------------------------------------------------------


def test_turn_off_then_the_password_alone_signs_in(client, alice_with_app, db_session):
    alice, app, codes = alice_with_app
    password_step(client)
    submit(client, CODE_PAGE, {"code": next_code(app)})
    assert "Turn off two-step verification" in text(client.get("/account/sign-in-methods"))
    response = submit(client, "/account/two-step/app/off", {})
    assert response.status_code == 302
    account = reloaded(db_session, alice)
    assert not account.has_two_factor
    assert account.totp_secret is None
    assert (
        db_session.scalars(select(RecoveryCode).where(RecoveryCode.account_id == alice.id)).all()
        == []
    )
    assert event_kinds(db_session, alice)[-1] == "two_factor_disabled"
    sign_out(client)
    assert password_step(client).location == "/account/"
    assert codes  # they no longer work: there is no second step to replace


# ---- staff --------------------------------------------------------------------------------


def test_staff_may_use_recovery_codes_and_cannot_turn_the_app_off(client, make_account, db_session):
    dpo = make_account("dpo@example.com", role=StaffRole.DPO)
    assert password_step(client, "dpo@example.com").location == "/login/two-factor/setup"
    page = text(client.get("/login/two-factor/setup"))
    key = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    app = pyotp.TOTP(key)
    assert submit(client, "/login/two-factor/setup", {"code": app.now()}).status_code == 302

    methods = text(client.get("/account/sign-in-methods"))
    assert "Staff cannot turn it off." in methods
    assert client.get("/account/two-step/app/off").location == "/account/sign-in-methods"
    off = submit(client, "/account/two-step/app/off", {}, form_page="/account/sign-in-methods")
    assert off.status_code == 302
    assert reloaded(db_session, dpo).has_two_factor
    codes = codes_on(submit(client, "/account/two-step/recovery-codes", {}))
    assert len(codes) == 10
    sign_out(client)

    password_step(client, "dpo@example.com")
    assert "Use a recovery code" in text(client.get(CODE_PAGE))
    assert submit(client, RECOVERY_PAGE, {"code": codes[0]}).status_code == 302
    assert is_signed_in(client)


def test_consumers_without_a_second_step_have_no_recovery_codes(client, alice):
    response = client.get("/account/two-step/recovery-codes")
    assert response.location == "/account/sign-in-methods"
    assert "turn it on first" in text(client.get("/account/sign-in-methods"))


def test_the_security_activity_names_every_change(client, alice_with_app):
    _alice, _app, codes = alice_with_app
    password_step(client)
    submit(client, RECOVERY_PAGE, {"code": codes[0]})
    submit(client, "/account/two-step/recovery-codes", {})
    submit(client, "/account/two-step/app/off", {})
    page = text(client.get("/account/activity"))
    for label in (
        "Two-step verification turned on",
        "Recovery code used to sign in",
        "New recovery codes made",
        "Two-step verification turned off",
    ):
        assert label in page
