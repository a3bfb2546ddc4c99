"""Domain errors of social sign-in; ``views`` maps each to a page in one place."""

from __future__ import annotations

from vrm_portal.accounts.errors import AccountError


class SocialSignInFailed(AccountError):
    """The round trip through the provider did not give a trustworthy identity.

    ``reason``: ``cancelled``, ``state_mismatch``, ``invalid_token``, ``provider_error``,
    ``unreachable`` or ``timeout``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class UnverifiedEmail(AccountError):
    """The provider did not vouch for the address, so it neither creates nor joins an
    account (it can still be linked by a signed-in consumer, from the settings)."""


class InvalidProviderEmail(AccountError):
    """The provider's address fails the rules of the sign-up form, so it neither creates,
    joins nor is linked to an account.

    ``reason``: ``hidden_characters`` (line breaks, control or invisible characters),
    ``incomplete_domain`` (no dot after the @, or a trailing one), ``too_long`` or
    ``invalid``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdentityLinkedElsewhere(AccountError):
    """The provider identity already belongs to another account."""


class LastSignInMethod(AccountError):
    """Unlinking would leave the account with no password and no other provider."""


class IdentityNotFound(AccountError):
    pass


class PendingLinkRejected(AccountError):
    """A "prove it's your account" step that cannot be used: unknown, used or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
