"""What brands recorded about a consumer, read back for the consumer's own pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from vrm_portal.history.models import Interaction

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: ``page`` is 1-based and ``pages`` is at least 1."""

    items: list[T]
    page: int
    pages: int
    total: int


def interactions_of(
    session: Session, account_id: int, brand_id: int | None, page: int, per_page: int = 20
) -> Page[Interaction]:
    """The consumer's interactions (only ``brand_id``'s when given), newest first.

    A page number that names no page (below 1, or past the last) gives the first page, so
    a stale or hand-edited link still shows something sensible.
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    mine = [Interaction.account_id == account_id]
    if brand_id is not None:
        mine.append(Interaction.brand_id == brand_id)
    total = session.scalar(select(func.count()).select_from(Interaction).where(*mine)) or 0
    pages = max(1, -(-total // per_page))
    number = page if 1 <= page <= pages else 1
    query = (
        select(Interaction)
        .where(*mine)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .offset((number - 1) * per_page)
        .limit(per_page)
    )
    if brand_id is None:
        query = query.options(selectinload(Interaction.brand))
    return Page(items=list(session.scalars(query)), page=number, pages=pages, total=total)
