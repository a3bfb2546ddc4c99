"""The account's time zone: the consumer's choice, or the first zone their browser reported.

It decides how the portal's pages and emails show times to this person (see
``vrm_portal.time_zones``); nothing a brand reads depends on it. A choice made in the
settings always wins: a browser's report only fills an empty setting, so travelling with
a laptop set to another zone never changes it behind the consumer's back.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from vrm_portal.accounts.errors import AccountError
from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import Account, EventKind
from vrm_portal.time_zones import is_known_zone


class UnknownTimeZone(AccountError):
    """Not an IANA zone name that the portal knows."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def set_time_zone(
    session: Session, account: Account, name: str, client: ClientInfo | None = None
) -> bool:
    """The consumer chose zone ``name``; False when it already was theirs."""
    if not is_known_zone(name):
        raise UnknownTimeZone(name)
    if account.time_zone == name:
        return False
    account.time_zone = name
    record_event(session, account, EventKind.TIME_ZONE_CHANGED, client, time_zone=name)
    session.flush()
    return True


def adopt_browser_time_zone(
    session: Session, account: Account, name: str, client: ClientInfo | None = None
) -> bool:
    """The zone a browser reported becomes the account's, unless the account has a zone
    already; False when nothing changed. Two tabs reporting at once record it once."""
    if not is_known_zone(name):
        raise UnknownTimeZone(name)
    adopted = session.execute(
        update(Account)
        .where(Account.id == account.id, Account.time_zone.is_(None))
        .values(time_zone=name)
    )
    if not adopted.rowcount:  # type: ignore[attr-defined]
        return False
    record_event(
        session, account, EventKind.TIME_ZONE_CHANGED, client, time_zone=name, source="browser"
    )
    session.flush()
    return True
