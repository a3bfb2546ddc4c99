"""Passkeys in a real Chromium, with a virtual authenticator (Chrome DevTools Protocol,
``WebAuthn`` domain): register one, sign out, sign in with it and no password, remove it;
and answers made on another origin are refused by the portal.

WebAuthn refuses IP addresses as relying party IDs, so these tests run their own server
for the shared e2e database at http://localhost:<port> (``VRM_PUBLIC_BASE_URL``). The same
app also answers on a second port: to the browser that is another origin (ports count)
with the same RP ID (they do not), so the browser makes real signed answers there, whose
``origin`` only the portal's check can refuse.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, CDPSession, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import PASSWORD, app_overrides
from tests.e2e.conftest import LiveServer, unique_email
from tests.mailbox import Mailbox
from vrm_portal import create_app
from vrm_portal.accounts.models import Account, AuthSession
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db, limiter

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class PasskeyServer:
    app: Flask
    #: The portal's public address (its RP ID is "localhost").
    url: str
    #: The same app on another port: another origin to the browser.
    other_origin: str


def _serve(app: Flask) -> tuple[BaseWSGIServer, threading.Thread]:
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-passkeys", daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="module")
def passkey_server(
    live_server: LiveServer,
    e2e_database_url: str,
    smtp: tuple[int, Mailbox],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PasskeyServer]:
    """The portal at http://localhost:<port>, on the e2e database ``live_server`` migrated."""
    smtp_port, _mailbox = smtp
    holder: dict[str, Flask] = {}

    def late_app(environ: dict[str, Any], start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    public, public_thread = _serve(late_app)  # type: ignore[arg-type]
    other, other_thread = _serve(late_app)  # type: ignore[arg-type]
    url = f"http://localhost:{public.server_port}"
    overrides = app_overrides(e2e_database_url, smtp_port, tmp_path_factory.mktemp("passkeys"))
    overrides |= {
        "PUBLIC_BASE_URL": url,
        "JOBS_URL": "immediate",
        "RECEIPT_SIGNING_KEY_FILE": live_server.app.config["RECEIPT_SIGNING_KEY_FILE"],
    }
    app = create_app(overrides)
    holder["app"] = app
    try:
        yield PasskeyServer(app, url, f"http://localhost:{other.server_port}")
    finally:
        for server, thread in ((public, public_thread), (other, other_thread)):
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@dataclass
class Device:
    """A browser tab with a virtual platform authenticator (resident keys, user
    verification that always succeeds, as a fingerprint would)."""

    page: Page
    cdp: CDPSession
    authenticator_id: str

    def remove(self, credential: dict[str, Any]) -> None:
        self.cdp.send(
            "WebAuthn.removeCredential",
            {"authenticatorId": self.authenticator_id, "credentialId": credential["credentialId"]},
        )

    def put_back(self, credential: dict[str, Any]) -> None:
        self.cdp.send(
            "WebAuthn.addCredential",
            {"authenticatorId": self.authenticator_id, "credential": credential},
        )

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})
        return list(found["credentials"])


@pytest.fixture
def device(browser: Browser, passkey_server: PasskeyServer) -> Iterator[Device]:
    with passkey_server.app.app_context():
        limiter.reset()
    context = browser.new_context(
        base_url=passkey_server.url, locale="en-GB", viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    yield Device(page, cdp, added["authenticatorId"])
    context.close()


def sign_in_with_passkey(page: Page, base: str = "") -> None:
    """Open the sign-in page and use the passkey: the autofill offer (which a virtual
    authenticator takes at once), else the button. Ends signed in, or on the refusal."""
    page.goto(f"{base}/login")
    try:
        page.wait_for_url(re.compile(r"/account/$|/login/passkey$"), timeout=3_000)
    except PlaywrightTimeoutError:
        page.get_by_role("button", name="Sign in with a passkey").click()
        page.wait_for_url(re.compile(r"/account/$|/login/passkey$"))


def signed_in(page: Page, base: str) -> bool:
    """Whether the browser's cookies open the account page (asked without following the
    redirect to the sign-in page, whose passkey autofill would sign in again)."""
    response = page.request.get(f"{base}/account/", max_redirects=0)
    return response.status == 200


def sign_in_with_password(page: Page, email: str, base: str = "") -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status").first).to_contain_text("You are signed out.")


def add_passkey(page: Page, name: str) -> None:
    page.goto("/account/sign-in-methods")
    page.get_by_role("link", name="Add a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a passkey")
    page.get_by_label("Name of the passkey").fill(name)
    page.get_by_role("button", name="Create the passkey").click()


def test_register_a_passkey_sign_in_without_a_password_then_remove_it(
    device: Device, passkey_server: PasskeyServer, make_account, check_a11y, screenshot
):
    page = device.page
    email = make_account(unique_email("passkey"))
    page.goto("/login")
    expect(page.get_by_label("Email address")).to_have_attribute(
        "autocomplete", "username webauthn"
    )
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    check_a11y(page, "the sign-in page with passkeys")
    sign_in_with_password(page, email)
    expect(page).to_have_url(re.compile(r"/account/$"))

    page.goto("/account/sign-in-methods")
    expect(page.get_by_role("heading", name="Passkeys")).to_be_visible()
    expect(page.get_by_text("You have no passkey yet.")).to_be_visible()
    check_a11y(page, "the sign-in methods page without passkeys")

    page.get_by_role("link", name="Add a passkey").click()
    # The script found WebAuthn: the button shows, the "needs JavaScript" note does not.
    expect(page.get_by_role("button", name="Create the passkey")).to_be_visible()
    expect(page.get_by_text("this browser cannot use them here")).to_be_hidden()
    check_a11y(page, "the add-a-passkey page")
    screenshot(page, "passkey-add")
    page.get_by_label("Name of the passkey").fill("Test laptop")
    page.get_by_role("button", name="Create the passkey").click()

    expect(page).to_have_url(re.compile(r"/account/sign-in-methods$"))
    expect(page.get_by_role("status").first).to_contain_text("Your passkey “Test laptop” is ready")
    expect(page.get_by_role("heading", name="Test laptop")).to_be_visible()
    check_a11y(page, "the sign-in methods page with a passkey")
    screenshot(page, "passkey-methods")
    [credential] = device.credentials()
    assert credential["isResidentCredential"] is True
    assert credential["rpId"] == "localhost"

    # Signed out, the sign-in page offers the passkey (autofill; a virtual authenticator
    # answers at once) or the button: no password is typed.
    sign_out(page)
    sign_in_with_passkey(page)
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.get_by_text(email)).to_be_visible()
    page.goto("/account/activity")
    expect(page.locator("main")).to_contain_text("Passkey used")
    assert device.credentials()[0]["signCount"] >= 1

    # Remove it (a fresh sign-in counts as confirming it is you).
    page.goto("/account/sign-in-methods")
    page.get_by_role("link", name="Remove Test laptop").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove “Test laptop”?")
    check_a11y(page, "the remove-a-passkey page")
    page.get_by_role("button", name="Remove the passkey").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "The passkey “Test laptop” is removed."
    )
    expect(page.get_by_text("You have no passkey yet.")).to_be_visible()

    # The device still holds the key, but it no longer opens anything.
    sign_out(page)
    sign_in_with_passkey(page)
    expect(page.get_by_role("alert")).to_contain_text("This passkey is not registered")
    check_a11y(page, "the sign-in page after a refused passkey")
    assert not signed_in(page, passkey_server.url)


def test_answers_made_on_another_origin_are_refused(
    device: Device, passkey_server: PasskeyServer, make_account
):
    page = device.page
    email = make_account(unique_email("origin"))
    other = passkey_server.other_origin
    sign_in_with_password(page, email, base=other)

    # The same portal, reached on another port: the browser signs for that origin (the
    # RP ID "localhost" still matches it), and the portal refuses the answer.
    page.goto(f"{other}/account/passkeys/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a passkey")
    page.get_by_label("Name of the passkey").fill("Wrong origin")
    page.get_by_role("button", name="Create the passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("did not pass our security checks")
    # The authenticator made a passkey; the portal did not keep it. Drop it from the
    # device, so that only the registered one below can be offered.
    [stray] = device.credentials()
    device.remove(stray)
    page.goto(f"{passkey_server.url}/account/sign-in-methods")
    expect(page.get_by_text("You have no passkey yet.")).to_be_visible()

    add_passkey(page, "Right origin")
    expect(page.get_by_role("status").first).to_contain_text("is ready")
    sign_out(page)

    sign_in_with_passkey(page, other)
    expect(page.get_by_role("alert")).to_contain_text("did not pass our security checks")
    expect(page.get_by_role("alert")).to_contain_text("You are not signed in.")
    assert not signed_in(page, passkey_server.url)

    # At the portal's own address, the same passkey signs in.
    sign_in_with_passkey(page, passkey_server.url)
    expect(page).to_have_url(re.compile(r"/account/$"))


def test_a_passkey_or_a_recovery_code_as_the_second_step(
    device: Device, passkey_server: PasskeyServer, make_account, check_a11y, screenshot
):
    page = device.page
    email = make_account(unique_email("twostep"))
    sign_in_with_password(page, email)

    # Turn on two-step verification with an authenticator app; keep the recovery codes.
    page.goto("/account/sign-in-methods")
    page.get_by_role("link", name="Turn on two-step verification").click()
    check_a11y(page, "the turn-on two-step verification page")
    key = page.locator("#totp-secret").inner_text().replace(" ", "")
    app = pyotp.TOTP(key)
    page.get_by_label("6-digit code from your authenticator app").fill(app.now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    check_a11y(page, "the recovery codes page")
    screenshot(page, "recovery-codes")
    add_passkey(page, "Phone")
    expect(page.get_by_role("status").first).to_contain_text("is ready")
    check_a11y(page, "the sign-in methods page with two-step verification")
    # Away from the device for the password sign-ins below (else the sign-in page's
    # passkey autofill, which a virtual authenticator takes at once, signs in first).
    [passkey] = device.credentials()
    device.remove(passkey)

    # Password, then a recovery code instead of the app's code.
    sign_out(page)
    sign_in_with_password(page, email)
    expect(page).to_have_url(re.compile(r"/login/two-factor$"))
    check_a11y(page, "the code page with other ways")
    page.get_by_role("link", name="Use a recovery code").click()
    check_a11y(page, "the recovery code page")
    page.get_by_label("Recovery code").fill(codes[0])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.locator(".flashes")).to_contain_text("You used a recovery code: 9 are left.")

    # Password, then the passkey (back on the device) as the second step.
    sign_out(page)
    sign_in_with_password(page, email)
    expect(page).to_have_url(re.compile(r"/login/two-factor$"))
    device.put_back(passkey)
    page.get_by_role("link", name="Use a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-step verification")
    check_a11y(page, "the passkey second step page")
    page.get_by_role("button", name="Use my passkey").click()
    expect(page).to_have_url(re.compile(r"/account/$"))

    # Long after signing in, a change asks to confirm it is you.
    with passkey_server.app.app_context(), Session(db.engine) as session:
        account_id = session.scalar(select(Account.id).where(Account.email == email))
        session.execute(
            update(AuthSession)
            .where(AuthSession.account_id == account_id)
            .values(created_at=utcnow().replace(year=2020))
        )
        session.commit()
    page.goto("/account/two-step/recovery-codes")
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is you")
    check_a11y(page, "the confirm-it-is-you page")
    page.get_by_role("button", name="Confirm with a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Make new recovery codes")
    check_a11y(page, "the new recovery codes page")
    page.goto("/account/two-step/app/off")
    check_a11y(page, "the turn-off page")
    page.get_by_role("button", name="Turn off").click()
    expect(page.get_by_role("status").first).to_contain_text("Two-step verification is off.")
