"""One budget of password attempts per account, shared by every form that checks one.

Sign-in, the "prove this account is yours" form of social linking, and the
re-authentication of the password change, the email change and the account deletion all
count on the same Flask-Limiter counter (one shared scope), keyed on the account's
address, with the limit ``LOGIN_PER_EMAIL_RATE_LIMIT``: guessing cannot move on to
another form, or another client address, once the address is paused. The limiter refuses
before the view runs, so a refused attempt never checks the password.

A sign-in attempt from a browser that signed in to that account before (a valid device
cookie, see ``device_cookies``) counts on that device's own budget instead, so that
strangers exhausting the address's budget do not lock its owner out. Re-authentication
while signed in always counts on the address: a stolen session must not bring a budget
of its own.

The per-client limits (``LOGIN_RATE_LIMIT``) stay on each form besides this one.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, request
from flask_limiter import RouteLimit
from flask_login import current_user

from vrm_portal.accounts import device_cookies, service
from vrm_portal.accounts.errors import InvalidEmail
from vrm_portal.accounts.models import Account
from vrm_portal.extensions import db, limiter

#: The Flask-Limiter scope every password form shares.
SCOPE = "account-password"
#: Longest address read from a form (the column holds 254 characters).
_MAX_ADDRESS = 320


def _limit() -> str:
    return str(current_app.config["LOGIN_PER_EMAIL_RATE_LIMIT"])


def limited(
    key_func: Callable[[], str], *, exempt_when: Callable[[], bool] | None = None
) -> RouteLimit:
    """The decorator of a form that checks a password: its POSTs draw on the budget that
    ``key_func`` names (one of the key functions below)."""
    return limiter.shared_limit(
        _limit, SCOPE, key_func=key_func, methods=["POST"], exempt_when=exempt_when
    )


def address_key(address: str) -> str:
    """The budget of an address: every spelling of one account's address counts once."""
    raw = address[:_MAX_ADDRESS]
    try:
        normalised = service.normalise_email(raw)
    except InvalidEmail:
        normalised = raw.strip().lower()
    return "email:" + normalised


def account_sign_in_key(account: Account) -> str:
    """The budget of a sign-in attempt to ``account``: this browser's own when it holds a
    valid device cookie for the account, else the account's address."""
    device = device_cookies.presented_device()
    if device is not None and device.account_id == account.id:
        return "device:" + device.nonce
    return address_key(account.email)


def posted_sign_in_key() -> str:
    """The sign-in form's budget: the posted address, or this browser's device budget
    when its device cookie names the account of that address."""
    posted = request.form.get("email") or ""
    device = device_cookies.presented_device()
    if device is not None:
        account = service.find_account_by_email(db.session, posted[:_MAX_ADDRESS])
        if account is not None and account.id == device.account_id:
            return "device:" + device.nonce
    return address_key(posted)


def signed_in_account_key() -> str:
    """Re-authentication's budget: the signed-in account's address."""
    if not current_user.is_authenticated:  # the page itself will ask to sign in
        return client_key()
    return address_key(current_user.account.email)


def client_key() -> str:
    """For a request that names no account (nothing to guess): the client address."""
    return "client:" + (request.remote_addr or "unknown")
