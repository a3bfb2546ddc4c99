"""Texts the account pages show for domain outcomes (translated lazily)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from vrm_portal.accounts.models import EventKind

TOKEN_PROBLEMS = {
    "unknown": _l("This link is not valid. Check that you opened the whole link from the email."),
    "used": _l("This link has already been used. Each link works only once."),
    "expired": _l("This link has expired. Ask for a new one and use it soon after."),
    "other_account": _l(
        "This link belongs to another account. Sign out, then open the link again."
    ),
    "email_taken": _l("This address is now used by another account, so it cannot be yours."),
}

EVENT_LABELS = {
    EventKind.REGISTERED: _l("Account created"),
    EventKind.EMAIL_VERIFIED: _l("Email address confirmed"),
    EventKind.SIGNED_IN: _l("Signed in"),
    EventKind.SIGN_IN_FAILED: _l("Failed sign-in attempt (wrong password)"),
    EventKind.SIGNED_OUT: _l("Signed out"),
    EventKind.SESSION_REVOKED: _l("Session signed out from the Sessions page"),
    EventKind.PASSWORD_CHANGED: _l("Password changed"),
    EventKind.PASSWORD_RESET_REQUESTED: _l("Password reset requested"),
    EventKind.PASSWORD_RESET: _l("Password reset through the emailed link"),
    EventKind.EMAIL_CHANGE_REQUESTED: _l("Email change requested"),
    EventKind.EMAIL_CHANGED: _l("Email address changed"),
    EventKind.LOCALE_CHANGED: _l("Language changed"),
    EventKind.STAFF_ROLE_GRANTED: _l("Staff role granted"),
    EventKind.TWO_FACTOR_ENABLED: _l("Two-step verification turned on"),
    EventKind.TWO_FACTOR_FAILED: _l("Wrong two-step verification code"),
    EventKind.TWO_FACTOR_RESET: _l("Two-step verification reset by an administrator"),
    EventKind.INTERESTS_CHANGED: _l("Interests changed"),
    EventKind.INTENT_STATED: _l("Plan shared with brands"),
    EventKind.INTENT_WITHDRAWN: _l("Plan withdrawn"),
    EventKind.INTENT_CHANGED: _l("Plan changed"),
    EventKind.INTENT_RESTORED: _l("Plan withdrawal undone"),
    EventKind.SOCIAL_SIGN_IN: _l("Signed in with a linked provider"),
    EventKind.IDENTITY_LINKED: _l("Sign-in method linked"),
    EventKind.IDENTITY_UNLINKED: _l("Sign-in method unlinked"),
    EventKind.IDENTITY_LINK_REQUESTED: _l(
        "Sign-in with a provider using your address, waiting for proof that it is you"
    ),
    EventKind.PROFILE_CHANGED: _l("Profile changed"),
    EventKind.PASSKEY_ADDED: _l("Passkey added"),
    EventKind.PASSKEY_RENAMED: _l("Passkey renamed"),
    EventKind.PASSKEY_REMOVED: _l("Passkey removed"),
    EventKind.PASSKEY_USED: _l("Passkey used"),
    EventKind.PASSKEY_REJECTED: _l("Passkey refused (a security check failed)"),
    EventKind.TWO_FACTOR_DISABLED: _l("Two-step verification turned off"),
    EventKind.RECOVERY_CODES_CREATED: _l(
        "New recovery codes made (the earlier ones stopped working)"
    ),
    EventKind.RECOVERY_CODE_USED: _l("Recovery code used to sign in"),
    EventKind.TIME_ZONE_CHANGED: _l("Time zone changed"),
}


#: HTTP status of the page that explains why a link cannot be used.
TOKEN_PROBLEM_STATUS = {"unknown": 404, "other_account": 403}


def token_problem(reason: str) -> str:
    return str(TOKEN_PROBLEMS.get(reason, TOKEN_PROBLEMS["unknown"]))


def token_problem_status(reason: str) -> int:
    """404 for a link that never existed, 403 for someone else's, 410 for a spent one."""
    return TOKEN_PROBLEM_STATUS.get(reason, 410)


def event_label(kind: str) -> str:
    try:
        return str(EVENT_LABELS[EventKind(kind)])
    except ValueError:
        return kind
