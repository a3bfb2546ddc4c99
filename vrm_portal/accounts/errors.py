"""Domain errors of the accounts feature; each blueprint maps them to a form error or page."""

from __future__ import annotations

from vrm_portal.accounts.models import (
    Account,
)


class AccountError(Exception):
    """Base of the accounts domain errors."""


class InvalidEmail(AccountError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PasswordRejected(AccountError):
    """The password breaks the policy; ``reason`` is a key of ``passwords.policy_problem``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidCredentials(AccountError):
    """Unknown email or wrong password: deliberately the same error for both."""


class AccountDisabled(AccountError):
    """An admin disabled this (staff) account: it cannot sign in."""


class EmailNotVerified(AccountError):
    def __init__(self, account: Account) -> None:
        super().__init__("email not verified")
        self.account = account


class WrongCurrentPassword(AccountError):
    """Re-authentication failed."""


class TokenRejected(AccountError):
    """An emailed link that cannot be used; ``reason``: unknown, used, expired, other_account,
    email_taken."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SessionNotFound(AccountError):
    pass
