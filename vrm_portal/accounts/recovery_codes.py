"""Recovery codes: ten single-use codes that stand in for the second step.

They are shown once, when made; only their SHA-256 digest is stored (each code holds 50
random bits, and the sign-in pages that take them are rate-limited). A new set replaces
the old one entirely. Every change is in the account's security history.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from vrm_portal.accounts.errors import AccountError
from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import Account, EventKind, RecoveryCode
from vrm_portal.accounts.tokens import hash_secret
from vrm_portal.clock import utcnow

COUNT = 10
#: Crockford's base 32 in lower case: no i, l, o or u to misread.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
LENGTH = 10
GROUP = 5
#: Letters people type for the digits they look like.
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})


class InvalidRecoveryCode(AccountError):
    """The code is not one of the account's, or was used already."""


def _normalise(code: str) -> str | None:
    """The code as hashed: lower case, without spaces or dashes; None if it cannot be one."""
    cleaned = "".join(ch for ch in code.lower() if ch not in " -\t").translate(_LOOKALIKES)
    if len(cleaned) != LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + GROUP] for i in range(0, LENGTH, GROUP))


def remaining_codes(session: Session, account: Account) -> int:
    """How many of the account's codes are still unused."""
    count = session.scalar(
        select(func.count(RecoveryCode.id)).where(
            RecoveryCode.account_id == account.id, RecoveryCode.used_at.is_(None)
        )
    )
    return int(count or 0)


def has_codes(session: Session, account: Account) -> bool:
    return remaining_codes(session, account) > 0


def replace_codes(
    session: Session, account: Account, *, client: ClientInfo | None = None
) -> list[str]:
    """A new set of ``COUNT`` codes, to show once; the previous set stops working."""
    replaced = remaining_codes(session, account)
    session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    codes: list[str] = []
    while len(codes) < COUNT:
        code = _new_code()
        if code not in codes:
            codes.append(code)
    now = utcnow()
    for code in codes:
        normalised = _normalise(code)
        assert normalised is not None
        session.add(
            RecoveryCode(account_id=account.id, code_hash=hash_secret(normalised), created_at=now)
        )
    session.flush()
    record_event(
        session,
        account,
        EventKind.RECOVERY_CODES_CREATED,
        client,
        count=COUNT,
        unused_replaced=replaced,
    )
    return codes


def use_code(
    session: Session, account: Account, code: str, *, client: ClientInfo | None = None
) -> int:
    """Accept one unused code in place of the second step, once; returns how many are left.

    ``InvalidRecoveryCode`` otherwise (recorded as a failed second step).
    """
    normalised = _normalise(code)
    used = 0
    if normalised is not None:
        result = session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.account_id == account.id,
                RecoveryCode.code_hash == hash_secret(normalised),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )
        used = int(getattr(result, "rowcount", 0) or 0)
    if used != 1:
        record_event(session, account, EventKind.TWO_FACTOR_FAILED, client, method="recovery_code")
        raise InvalidRecoveryCode()
    left = remaining_codes(session, account)
    record_event(session, account, EventKind.RECOVERY_CODE_USED, client, remaining=left)
    return left


def remove_codes(session: Session, account: Account) -> int:
    """Delete every code of the account (its second step was turned off); how many were
    still unused."""
    unused = remaining_codes(session, account)
    session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    session.flush()
    return unused
