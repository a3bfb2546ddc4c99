"""What can go wrong when a consent changes; views map these to messages."""

from __future__ import annotations


class ConsentError(Exception):
    """Base class of consent problems."""


class UnknownPurpose(ConsentError):
    """No such purpose for that brand (tampered or outdated form)."""


class ConsentVersionOutdated(ConsentError):
    """The form showed an older text than the purpose's current one."""

    def __init__(self, shown: int, current: int) -> None:
        super().__init__(f"version {shown} shown, version {current} is current")
        self.shown = shown
        self.current = current


class ConfirmationInvalid(ConsentError):
    """The confirmation link is unknown, used, expired or for an outdated text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        #: ``invalid``, ``used``, ``expired`` or ``outdated``.
        self.reason = reason
