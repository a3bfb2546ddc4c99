"""Domain errors of the administration console; the views turn each into a message."""

from __future__ import annotations


class AdminError(Exception):
    """Base of the console's refusals: ``str(error)`` is a code the view maps to a message."""


class AlreadyExists(AdminError):
    """A brand slug, purpose key or topic key already in use."""


class NothingToDo(AdminError):
    """The request would change nothing (a double submit, or the same text again)."""


class NotAllowed(AdminError):
    """The rule forbids it: reviewing one's own draft, demoting the last admin..."""


class Stale(AdminError):
    """The object changed since the page was shown (a draft of an outdated version)."""
