"""Who passes a second step after the password, and how; turning it off for consumers.

Staff always do: a code from their authenticator app, a passkey, or a recovery code.
Consumers do once they turn on an authenticator app (their choice); a passkey or a
recovery code may then stand in for the code. Signing in with a passkey alone needs no
second step for anyone: a passkey with user verification is two factors in itself.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from vrm_portal.accounts import recovery_codes, two_factor
from vrm_portal.accounts.errors import AccountError
from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import Account, EventKind
from vrm_portal.accounts.passkeys.service import has_passkeys, list_passkeys


class StaffNeedTwoFactor(AccountError):
    """Staff cannot turn their second step off (an operator resets a lost one)."""


def second_step_required(account: Account) -> bool:
    """Whether a password or provider sign-in must be followed by a second step."""
    return account.is_staff or account.has_two_factor


def second_step_endpoint(session: Session, account: Account) -> str:
    """Where a sign-in waiting for its second step goes first: the code from the app,
    else a passkey, else (staff without either) setting up the app."""
    if account.has_two_factor:
        return "two_factor.verify"
    if has_passkeys(session, account):
        return "second_step.passkey"
    return "two_factor.setup"


def turn_off_two_factor(
    session: Session, account: Account, *, client: ClientInfo | None = None
) -> None:
    """A consumer stops using an authenticator app: the secret and the recovery codes go."""
    if account.is_staff:
        raise StaffNeedTwoFactor()
    if not account.has_two_factor:
        return
    account.totp_secret = None
    account.totp_enabled_at = None
    account.totp_last_step = None
    removed = recovery_codes.remove_codes(session, account)
    record_event(
        session, account, EventKind.TWO_FACTOR_DISABLED, client, recovery_codes_removed=removed
    )
    session.flush()


def reset_second_steps(session: Session, account: Account, *, passkeys: bool) -> tuple[int, int]:
    """The operator's reset after a lost phone: the authenticator app and the recovery
    codes are forgotten, and with ``passkeys`` the passkeys too (lost with the phone).
    Staff set up their second step again at their next sign-in. Returns how many unused
    recovery codes and passkeys were removed."""
    two_factor.reset_two_factor(session, account)
    codes = recovery_codes.remove_codes(session, account)
    removed = list_passkeys(session, account) if passkeys else []
    for passkey in removed:
        session.delete(passkey)
        session.flush()
        record_event(session, account, EventKind.PASSKEY_REMOVED, name=passkey.name, by="operator")
    return codes, len(removed)
