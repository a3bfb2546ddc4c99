"""Passkeys without a browser: the options the portal hands out, and its checks of the
answers, driven by a software authenticator (``soft_authenticator``) that signs for real.
The browser's side of the ceremony is tested in tests/e2e/test_passkeys.py."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.accounts.flows import event_kinds, is_signed_in, text
from tests.accounts.soft_authenticator import SoftAuthenticator, unb64url
from tests.conftest import PASSWORD, csrf_token, sign_in, submit
from vrm_portal.accounts.models import Account, AccountEvent, AuthSession, StaffRole
from vrm_portal.accounts.passkeys.models import Passkey, PasskeyChallenge
from vrm_portal.accounts.passkeys.service import RelyingParty
from vrm_portal.clock import utcnow

ADD = "/account/passkeys/new"


def options(client: FlaskClient, path: str, page: str) -> dict[str, Any]:
    """What the page's script fetches: the WebAuthn options, as JSON."""
    response = client.post(path, headers={"X-CSRFToken": csrf_token(client, page)})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.get_json()
    return body


def add_passkey(
    client: FlaskClient, authenticator: SoftAuthenticator, name: str = "My phone", **kw: Any
) -> Any:
    answer = authenticator.create(options(client, f"{ADD}/options", ADD), **kw)
    return submit(client, ADD, {"name": name, "credential": json.dumps(answer)})


def sign_in_with_passkey(client: FlaskClient, authenticator: SoftAuthenticator, **kw: Any) -> Any:
    offered = options(client, "/login/passkey/options", "/login")
    answer = authenticator.get(offered, **kw)
    return submit(
        client,
        "/login/passkey",
        {"passkey_credential": json.dumps(answer), "passkey_next": "", "passkey_remember": ""},
        form_page="/login",
    )


def sign_out(client: FlaskClient) -> None:
    submit(client, "/logout", {}, form_page="/account/sessions")
    assert not is_signed_in(client)


def passkeys_of(db_session: Session, account: Account) -> list[Passkey]:
    db_session.expire_all()
    return list(db_session.scalars(select(Passkey).where(Passkey.account_id == account.id)))


def age_session(db_session: Session, account: Account, minutes: int = 30) -> None:
    """Make the account's sessions older than the "recently signed in" window."""
    db_session.execute(
        update(AuthSession)
        .where(AuthSession.account_id == account.id)
        .values(created_at=utcnow() - timedelta(minutes=minutes))
    )
    db_session.commit()


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator(origin="http://localhost")


# ---- the relying party ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "rp_id", "origin"),
    [
        ("http://localhost", "localhost", "http://localhost"),
        ("https://vrm.example.com/", "vrm.example.com", "https://vrm.example.com"),
        ("https://VRM.example.com:443", "vrm.example.com", "https://vrm.example.com"),
        ("http://localhost:5000/portal", "localhost", "http://localhost:5000"),
    ],
)
def test_the_relying_party_is_the_public_base_url(base_url, rp_id, origin):
    rp = RelyingParty.from_base_url(base_url, "VRM Portal")
    assert (rp.id, rp.origin) == (rp_id, origin)


def test_a_base_url_without_a_host_is_refused():
    with pytest.raises(ValueError, match="not an http"):
        RelyingParty.from_base_url("localhost", "VRM Portal")


# ---- registration -----------------------------------------------------------------------


def test_registration_asks_for_a_discoverable_passkey_with_user_verification(
    client, alice, db_session
):
    offered = options(client, f"{ADD}/options", ADD)

    assert offered["rp"] == {"name": "VRM Portal", "id": "localhost"}
    assert offered["user"]["name"] == "alice@example.com"
    assert len(unb64url(offered["user"]["id"])) == 32  # random, not the account id
    assert offered["authenticatorSelection"]["residentKey"] == "required"
    assert offered["authenticatorSelection"]["userVerification"] == "required"
    assert offered["attestation"] == "none"
    assert offered["excludeCredentials"] == []
    assert len(unb64url(offered["challenge"])) == 32
    # The challenge is kept server-side (its digest), short-lived.
    [challenge] = db_session.scalars(select(PasskeyChallenge)).all()
    assert challenge.purpose == "register"
    assert timedelta(minutes=4) < challenge.expires_at - utcnow() <= timedelta(minutes=5)


def test_register_a_passkey_then_sign_in_with_it_alone(client, alice, db_session, authenticator):
    response = add_passkey(client, authenticator, name="  My   phone ")
    assert response.status_code == 302, text(response)
    assert response.location == "/account/sign-in-methods"
    page = text(client.get("/account/sign-in-methods"))
    assert "Your passkey “My phone” is ready" in page
    [passkey] = passkeys_of(db_session, alice)
    assert passkey.name == "My phone"
    assert passkey.transports == ["internal"]
    assert passkey.credential_id == authenticator.passkeys[0].credential_id

    sign_out(client)
    response = sign_in_with_passkey(client, authenticator)

    assert response.status_code == 302, text(response)
    assert response.location == "/account/"
    assert is_signed_in(client)
    kinds = event_kinds(db_session, alice)
    assert kinds[-2:] == ["passkey_used", "signed_in"]
    assert "passkey_added" in kinds
    [passkey] = passkeys_of(db_session, alice)
    assert passkey.sign_count == 1
    assert passkey.last_used_at is not None


def test_the_same_authenticator_is_not_registered_twice(client, alice, authenticator):
    assert add_passkey(client, authenticator).status_code == 302
    offered = options(client, f"{ADD}/options", ADD)
    assert [unb64url(c["id"]) for c in offered["excludeCredentials"]] == [
        authenticator.passkeys[0].credential_id
    ]
    with pytest.raises(RuntimeError, match="InvalidStateError"):
        authenticator.create(offered)


def test_all_of_an_accounts_passkeys_share_one_user_handle(client, alice, db_session):
    phone, laptop = SoftAuthenticator(), SoftAuthenticator()
    add_passkey(client, phone, name="Phone")
    add_passkey(client, laptop, name="Laptop")
    handles = {p.user_handle for p in passkeys_of(db_session, alice)}
    assert len(handles) == 1


def test_a_registration_from_another_origin_is_refused(client, alice, db_session):
    evil = SoftAuthenticator(origin="http://localhost.evil.example")
    response = add_passkey(client, evil)
    assert response.status_code == 422
    assert "did not pass our security checks" in text(response)
    assert passkeys_of(db_session, alice) == []


def test_a_registration_without_user_verification_is_refused(client, alice, db_session):
    response = add_passkey(client, SoftAuthenticator(user_verified=False))
    assert response.status_code == 422
    assert passkeys_of(db_session, alice) == []


def test_a_registration_answer_is_accepted_once(client, alice, db_session, authenticator):
    answer = authenticator.create(options(client, f"{ADD}/options", ADD))
    data = {"name": "Phone", "credential": json.dumps(answer)}
    assert submit(client, ADD, data).status_code == 302
    replay = submit(client, ADD, data)
    assert replay.status_code == 422
    assert "This took too long" in text(replay)
    assert len(passkeys_of(db_session, alice)) == 1


def test_a_registration_without_javascript_says_what_is_needed(client, alice):
    response = submit(client, ADD, {"name": "Phone", "credential": ""})
    assert response.status_code == 422
    assert "Passkeys need JavaScript" in text(response)


def test_a_passkey_needs_a_name(client, alice, authenticator):
    answer = authenticator.create(options(client, f"{ADD}/options", ADD))
    response = submit(client, ADD, {"name": " \t ", "credential": json.dumps(answer)})
    assert response.status_code == 422
    assert "Give the passkey a name." in text(response)


def test_the_add_page_explains_javascript_and_has_no_inline_script(client, alice):
    page = text(client.get(ADD))
    assert 'data-passkey="create"' in page
    assert "needs JavaScript" in page
    # Besides base.html's time zone detection (Alice has no zone yet), from files only.
    assert re.findall(r'<script src="([^"]+)"', page) == [
        "/static/time-zone.js",
        "/static/passkeys.js",
    ]
    assert page.count("<script") == 2


# ---- signing in -------------------------------------------------------------------------


def test_the_sign_in_page_offers_passkey_autofill(client):
    page = text(client.get("/login"))
    assert 'autocomplete="username webauthn"' in page
    assert "data-passkey-autofill" in page
    assert 'data-passkey-options="/login/passkey/options"' in page
    assert '<script src="/static/passkeys.js" defer></script>' in page
    assert "<script>" not in page


def test_sign_in_options_name_no_account(client, make_account, db_session):
    make_account()
    offered = options(client, "/login/passkey/options", "/login")
    assert offered["rpId"] == "localhost"
    assert offered["allowCredentials"] == []
    assert offered["userVerification"] == "required"


def test_options_need_the_csrf_token(client):
    assert client.post("/login/passkey/options").status_code == 400


@pytest.fixture
def alice_with_passkey(client, alice, authenticator) -> Account:
    assert add_passkey(client, authenticator).status_code == 302
    sign_out(client)
    return alice


def test_a_sign_in_answer_is_accepted_once(client, alice_with_passkey, authenticator):
    offered = options(client, "/login/passkey/options", "/login")
    data = {"passkey_credential": json.dumps(authenticator.get(offered))}
    assert submit(client, "/login/passkey", data, form_page="/login").status_code == 302
    sign_out(client)
    replay = submit(client, "/login/passkey", data, form_page="/login")
    assert replay.status_code == 422
    assert "This took too long" in text(replay)
    assert not is_signed_in(client)


def test_sign_in_options_set_no_cookie(client, alice_with_passkey):
    """The sign-in page asks for them in the background: a cookie set by that answer could
    arrive after the password form's answer and sign the browser out again."""
    token = csrf_token(client, "/login")
    response = client.post("/login/passkey/options", headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_only_a_challenge_handed_out_for_a_sign_in_is_accepted(
    client, alice_with_passkey, authenticator
):
    invented = {"rpId": "localhost", "challenge": base64.urlsafe_b64encode(b"x" * 32).decode()}
    response = submit(
        client,
        "/login/passkey",
        {"passkey_credential": json.dumps(authenticator.get(invented))},
        form_page="/login",
    )
    assert response.status_code == 422
    assert "This took too long" in text(response)
    # A challenge handed out to confirm it is you does not sign in either.
    sign_in(client, "alice@example.com")
    offered = options(client, "/account/confirm-access/passkey/options", "/account/")
    sign_out(client)
    response = submit(
        client,
        "/login/passkey",
        {"passkey_credential": json.dumps(authenticator.get(offered))},
        form_page="/login",
    )
    assert response.status_code == 422
    assert not is_signed_in(client)


def test_an_expired_challenge_is_refused(client, alice_with_passkey, authenticator, db_session):
    offered = options(client, "/login/passkey/options", "/login")
    db_session.execute(update(PasskeyChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    db_session.commit()
    response = submit(
        client,
        "/login/passkey",
        {"passkey_credential": json.dumps(authenticator.get(offered))},
        form_page="/login",
    )
    assert response.status_code == 422
    assert not is_signed_in(client)


def test_an_answer_made_for_another_origin_is_refused(
    client, alice_with_passkey, authenticator, db_session
):
    response = sign_in_with_passkey(client, authenticator, origin="http://127.0.0.1")
    assert response.status_code == 422
    page = text(response)
    assert "did not pass our security checks" in page
    assert "You are not signed in." in page
    assert "data-passkey-autofill" not in page  # no autofill loop after a failure
    assert not is_signed_in(client)
    assert event_kinds(db_session, alice_with_passkey)[-1] == "passkey_rejected"


def test_user_verification_is_required_to_sign_in(client, alice_with_passkey, authenticator):
    authenticator.user_verified = False
    response = sign_in_with_passkey(client, authenticator)
    assert response.status_code == 422
    assert not is_signed_in(client)


def test_a_counter_that_goes_back_is_refused_as_a_clone(
    client, alice_with_passkey, authenticator, db_session
):
    assert sign_in_with_passkey(client, authenticator, sign_count=5).status_code == 302
    sign_out(client)
    response = sign_in_with_passkey(client, authenticator, sign_count=3)
    assert response.status_code == 422
    assert "may have been copied" in text(response)
    event = db_session.scalars(
        select(AccountEvent)
        .where(AccountEvent.account_id == alice_with_passkey.id)
        .order_by(AccountEvent.id.desc())
    ).first()
    assert (event.kind, event.detail["reason"]) == ("passkey_rejected", "cloned")


def test_passkeys_without_a_counter_are_accepted(client, alice_with_passkey, authenticator):
    authenticator.counter = False
    assert sign_in_with_passkey(client, authenticator).status_code == 302
    sign_out(client)
    assert sign_in_with_passkey(client, authenticator).status_code == 302


def test_a_removed_passkey_no_longer_signs_in(
    client, alice_with_passkey, authenticator, db_session
):
    db_session.execute(Passkey.__table__.delete())
    db_session.commit()
    response = sign_in_with_passkey(client, authenticator)
    assert response.status_code == 422
    assert "not registered" in text(response)


def test_a_forged_user_handle_is_refused(client, alice_with_passkey, authenticator):
    authenticator.passkeys[0].user_handle = b"someone else"
    assert sign_in_with_passkey(client, authenticator).status_code == 422


def test_the_sign_in_goes_where_it_was_going_and_may_remember(
    client, alice_with_passkey, authenticator, db_session
):
    offered = options(client, "/login/passkey/options", "/login")
    data = {
        "passkey_credential": json.dumps(authenticator.get(offered)),
        "passkey_next": "/account/sessions",
        "passkey_remember": "1",
    }
    response = submit(client, "/login/passkey", data, form_page="/login")
    assert response.location == "/account/sessions"
    db_session.expire_all()
    [*_, latest] = db_session.scalars(
        select(AuthSession)
        .where(AuthSession.account_id == alice_with_passkey.id)
        .order_by(AuthSession.id)
    ).all()
    assert latest.remember


# ---- staff ------------------------------------------------------------------------------


def _staff_session(client: FlaskClient, app, account: Account) -> None:
    """Sign ``account`` in directly (as after its second step) in ``client``."""
    with app.test_request_context():
        from vrm_portal.accounts import auth_sessions
        from vrm_portal.extensions import db

        _auth, token = auth_sessions.start_session(
            db.session, account, remember=False, lifetime=timedelta(hours=1)
        )
        db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = token
        session["_fresh"] = True


def test_staff_may_use_a_passkey_instead_of_an_authenticator_app(
    app, client, make_account, authenticator, db_session
):
    dpo = make_account("dpo@example.com", role=StaffRole.DPO)
    _staff_session(client, app, dpo)
    assert add_passkey(client, authenticator).status_code == 302
    sign_out(client)

    # Password, then the passkey as the second step (not the app set-up).
    response = submit(client, "/login", {"email": "dpo@example.com", "password": PASSWORD})
    assert response.location == "/login/two-factor/passkey"
    assert not is_signed_in(client)
    offered = options(client, "/login/two-factor/passkey/options", "/login/two-factor/passkey")
    assert [unb64url(c["id"]) for c in offered["allowCredentials"]] == [
        authenticator.passkeys[0].credential_id
    ]
    answer = authenticator.get(offered)
    response = submit(client, "/login/two-factor/passkey", {"credential": json.dumps(answer)})
    assert response.status_code == 302
    assert is_signed_in(client)

    # A passkey alone is two factors: staff sign in with it directly.
    sign_out(client)
    assert sign_in_with_passkey(client, authenticator).status_code == 302
    assert is_signed_in(client)


def test_someone_elses_passkey_is_not_a_second_step(
    app, client, new_browser, make_account, authenticator
):
    dpo = make_account("dpo@example.com", role=StaffRole.DPO)
    _staff_session(client, app, dpo)
    add_passkey(client, SoftAuthenticator(), name="DPO's key")
    alice = make_account("alice@example.com")
    other = new_browser()
    sign_in(other, "alice@example.com")
    add_passkey(other, authenticator, name="Alice's key")
    assert alice

    sign_out(client)
    submit(client, "/login", {"email": "dpo@example.com", "password": PASSWORD})
    offered = options(client, "/login/two-factor/passkey/options", "/login/two-factor/passkey")
    answer = authenticator.get({**offered, "allowCredentials": []})  # Alice's passkey
    response = submit(client, "/login/two-factor/passkey", {"credential": json.dumps(answer)})
    assert response.status_code == 422
    assert not is_signed_in(client)


def test_staff_cannot_remove_their_last_passkey_without_an_app(
    app, client, make_account, authenticator, db_session
):
    dpo = make_account("dpo@example.com", role=StaffRole.DPO)
    _staff_session(client, app, dpo)
    add_passkey(client, authenticator)
    [passkey] = passkeys_of(db_session, dpo)
    page = client.get(f"/account/passkeys/{passkey.id}/remove")
    assert "Staff need a second step" in text(page)
    response = submit(client, f"/account/passkeys/{passkey.id}/remove", {})
    assert response.status_code == 409
    assert len(passkeys_of(db_session, dpo)) == 1


# ---- confirming it is you; renaming and removing ------------------------------------------


def test_adding_a_passkey_long_after_signing_in_asks_to_confirm_it_is_you(
    client, alice, db_session, authenticator
):
    age_session(db_session, alice)
    response = client.get(ADD)
    assert response.status_code == 302
    assert response.location == "/account/confirm-access?next=/account/passkeys/new"
    assert (
        client.post(
            f"{ADD}/options", headers={"X-CSRFToken": csrf_token(client, "/account/")}
        ).status_code
        == 403
    )

    page = "/account/confirm-access?next=/account/passkeys/new"
    wrong = submit(client, page, {"password": "not my password"})
    assert wrong.status_code == 422
    assert "Your password is not right." in text(wrong)
    right = submit(client, page, {"password": PASSWORD})
    assert right.location == "/account/passkeys/new"
    assert client.get(ADD).status_code == 200


def test_a_passkey_confirms_it_is_you_too(client, alice, db_session, authenticator):
    add_passkey(client, authenticator)
    age_session(db_session, alice)
    page = "/account/confirm-access?next=/account/passkeys/new"
    assert "Confirm with a passkey" in text(client.get(page))
    offered = options(client, "/account/confirm-access/passkey/options", page)
    response = submit(
        client,
        "/account/confirm-access/passkey",
        {"credential": json.dumps(authenticator.get(offered)), "next": "/account/passkeys/new"},
        form_page=page,
    )
    assert response.location == "/account/passkeys/new"
    assert event_kinds(db_session, alice)[-1] == "passkey_used"


def test_the_confirmation_does_not_go_elsewhere(client, alice, db_session):
    age_session(db_session, alice)
    page = "/account/confirm-access?next=https://evil.example/"
    response = submit(client, page, {"password": PASSWORD})
    assert response.location == "/account/sign-in-methods"


def test_rename_then_remove_a_passkey(client, alice, db_session, authenticator):
    add_passkey(client, authenticator)
    [passkey] = passkeys_of(db_session, alice)
    methods = text(client.get("/account/sign-in-methods"))
    assert "My phone" in methods
    assert f"/account/passkeys/{passkey.id}/rename" in methods

    response = submit(client, f"/account/passkeys/{passkey.id}/rename", {"name": "Old phone"})
    assert response.status_code == 302
    assert passkeys_of(db_session, alice)[0].name == "Old phone"

    age_session(db_session, alice)
    remove = f"/account/passkeys/{passkey.id}/remove"
    assert client.get(remove).location.startswith("/account/confirm-access")
    submit(client, f"/account/confirm-access?next={remove}", {"password": PASSWORD})
    assert "Remove “Old phone”?" in text(client.get(remove))
    response = submit(client, remove, {})
    assert response.status_code == 302
    assert passkeys_of(db_session, alice) == []
    kinds = event_kinds(db_session, alice)
    assert kinds[-3:] == ["passkey_added", "passkey_renamed", "passkey_removed"]
    assert "Passkey removed" in text(client.get("/account/activity"))


def test_nobody_else_may_rename_or_remove_a_passkey(
    client, new_browser, make_account, db_session, authenticator
):
    alice = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    add_passkey(client, authenticator)
    [passkey] = passkeys_of(db_session, alice)
    make_account("bob@example.com")
    bob = new_browser()
    sign_in(bob, "bob@example.com")
    assert bob.get(f"/account/passkeys/{passkey.id}/rename").status_code == 404
    assert bob.get(f"/account/passkeys/{passkey.id}/remove").status_code == 404
    token = csrf_token(bob, "/account/sign-in-methods")
    response = bob.post(f"/account/passkeys/{passkey.id}/remove", data={"csrf_token": token})
    assert response.status_code == 404
    assert len(passkeys_of(db_session, alice)) == 1


def test_the_last_way_to_sign_in_cannot_be_removed(client, alice, db_session, authenticator):
    add_passkey(client, authenticator)
    alice_row = db_session.get(Account, alice.id)
    alice_row.password_hash = None  # signs in with the passkey only
    db_session.commit()
    [passkey] = passkeys_of(db_session, alice)
    response = submit(client, f"/account/passkeys/{passkey.id}/remove", {})
    assert response.status_code == 409
    assert "your only way to sign in" in text(response)
    assert len(passkeys_of(db_session, alice)) == 1


def test_the_operator_reset_may_forget_passkeys_too(
    app, client, make_account, authenticator, db_session
):
    dpo = make_account("dpo@example.com", role=StaffRole.DPO)
    _staff_session(client, app, dpo)
    add_passkey(client, authenticator)
    sign_out(client)
    runner = app.test_cli_runner()

    result = runner.invoke(args=["vrm", "reset-two-factor", "--email", "dpo@example.com"])
    assert result.exit_code == 0, result.output
    assert len(passkeys_of(db_session, dpo)) == 1
    assert password_step_location(client) == "/login/two-factor/passkey"

    result = runner.invoke(
        args=["vrm", "reset-two-factor", "--email", "dpo@example.com", "--passkeys"]
    )
    assert result.exit_code == 0, result.output
    assert "passkeys removed: 1" in result.output
    assert passkeys_of(db_session, dpo) == []
    assert event_kinds(db_session, dpo)[-1] == "passkey_removed"
    assert password_step_location(new_client(app)) == "/login/two-factor/setup"


def password_step_location(client: FlaskClient) -> str:
    response = submit(client, "/login", {"email": "dpo@example.com", "password": PASSWORD})
    return str(response.location)


def new_client(app) -> FlaskClient:
    return app.test_client()
