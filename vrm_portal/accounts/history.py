"""The account's security history, and where each request came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import (
    Account,
    AccountEvent,
    EventKind,
)


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, recorded in sessions and the security history."""

    ip_address: str | None = None
    user_agent: str | None = None

    def clipped(self) -> ClientInfo:
        return ClientInfo(
            self.ip_address[:45] if self.ip_address else None,
            self.user_agent[:255] if self.user_agent else None,
        )


def record_event(
    session: Session,
    account: Account,
    kind: EventKind,
    client: ClientInfo | None = None,
    **detail: Any,
) -> AccountEvent:
    """Append an entry to the account's security history."""
    client = (client or ClientInfo()).clipped()
    event = AccountEvent(
        account_id=account.id,
        kind=kind.value,
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


def list_events(
    session: Session, account: Account, *, page: int, per_page: int = 20
) -> tuple[list[AccountEvent], bool]:
    """One page (1-based) of the account's history, newest first, and whether more follow."""
    page = max(page, 1)
    rows = list(
        session.scalars(
            select(AccountEvent)
            .where(AccountEvent.account_id == account.id)
            .order_by(AccountEvent.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page + 1)
        )
    )
    return rows[:per_page], len(rows) > per_page
