"""The consumer's relationship with the brands as one timeline, newest first.

Five sources feed it: the consent ledger, the account's history (sign-ins, linked
identities, interests and plans), the interactions brands recorded, and data requests.
One query merges them in the database (``UNION ALL`` of each source projected to
``(at, source, id)``, each branch cut to one page by its own index) and pages through the
result with a keyset cursor on that triple, so a page costs the same whatever the length
of the history or the depth of the page. This module is that query side: the filters,
the opaque cursor and the paging. The details of the page's entries are then read with
one query per source by ``entries``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    exists,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from vrm_portal.accounts.models import Account, AccountEvent, EventKind
from vrm_portal.brands.models import Brand
from vrm_portal.consent.models import ConsentEvent
from vrm_portal.history.models import Interaction
from vrm_portal.interests.models import IntentBrand
from vrm_portal.mydata.entries import (
    INTEREST_KINDS,
    TYPE_LABELS,
    BrandRef,
    EntryType,
    Link,
    Source,
    TimelineEntry,
    read_entries,
)
from vrm_portal.requests.models import DataRequest

__all__ = [
    "BRANDLESS_TYPES",
    "DEFAULT_PER_PAGE",
    "TYPE_LABELS",
    "BrandRef",
    "Cursor",
    "EntryType",
    "InvalidCursor",
    "Link",
    "Position",
    "Source",
    "TimelineEntry",
    "TimelinePage",
    "decode_cursor",
    "encode_cursor",
    "timeline_page",
]

DEFAULT_PER_PAGE = 25
#: Largest id a cursor may name (BIGINT).
_MAX_ID = 2**63 - 1

#: Types that belong to no brand: a brand filter leaves them out.
BRANDLESS_TYPES = frozenset({EntryType.ACCOUNT, EntryType.REQUESTS})

#: Attempts and requests that change nothing in the relationship; they stay on the
#: Security activity page. Every other account event is on the timeline.
_SECURITY_ONLY_KINDS = (
    EventKind.SIGN_IN_FAILED.value,
    EventKind.SIGNED_OUT.value,
    EventKind.SESSION_REVOKED.value,
    EventKind.TWO_FACTOR_FAILED.value,
    EventKind.PASSKEY_REJECTED.value,
    EventKind.PASSWORD_RESET_REQUESTED.value,
    EventKind.EMAIL_CHANGE_REQUESTED.value,
    EventKind.IDENTITY_LINK_REQUESTED.value,
)


class InvalidCursor(ValueError):
    """A ``cursor`` that this module did not write (cut, edited, or from another page)."""


@dataclass(frozen=True)
class Position:
    """An entry's place in the merged order: newest ``at`` first, then source, then id."""

    at: datetime
    source: Source
    id: int


@dataclass(frozen=True)
class Cursor:
    position: Position
    #: True: the entries just older than ``position``; False: those just newer.
    older: bool


def encode_cursor(cursor: Cursor) -> str:
    p = cursor.position
    raw = f"{'o' if cursor.older else 'n'}|{p.at.isoformat()}|{p.source.value}|{p.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor ``encode_cursor`` wrote; ``InvalidCursor`` for anything else."""
    if not text or len(text) > 200 or not text.isascii():
        raise InvalidCursor(text)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        direction, at_text, source_text, id_text = raw.split("|")
        at = datetime.fromisoformat(at_text)
        source = Source(source_text)
        if at.tzinfo is None:
            raise InvalidCursor(text)
        # Year 9999 at -14:00 or year 1 at +14:00 is outside the calendar in UTC.
        at = at.astimezone(UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as error:
        raise InvalidCursor(text) from error
    if (
        direction not in ("o", "n")
        or not (id_text.isascii() and id_text.isdigit())
        or int(id_text) > _MAX_ID
    ):
        raise InvalidCursor(text)
    return Cursor(Position(at, source, int(id_text)), older=direction == "o")


@dataclass(frozen=True)
class TimelinePage:
    entries: list[TimelineEntry]
    #: Cursor of the next page of older entries, None at the oldest.
    older: str | None
    #: Cursor of the page of newer entries, None on the first page.
    newer: str | None
    #: The page starts at the newest entry.
    is_first: bool


def timeline_page(
    session: Session,
    account: Account,
    *,
    locale: str,
    brands: Sequence[Brand],
    brand: Brand | None = None,
    entry_type: EntryType | None = None,
    cursor: Cursor | None = None,
    per_page: int = DEFAULT_PER_PAGE,
) -> TimelinePage:
    """One page of the consumer's timeline, newest first, with the cursors around it.

    ``brand`` keeps the entries about that brand (types that belong to no brand, such as
    sign-ins and data requests, then have none); ``entry_type`` keeps one type. ``brands``
    is the catalogue the page names brands from. A cursor past the newest entry gives
    the first page.
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    types = [entry_type] if entry_type is not None else list(EntryType)
    keys = _merged_keys(session, account, brand, types, cursor, per_page + 1)
    if cursor is not None and not cursor.older and len(keys) <= per_page:
        # Nothing newer than a full page: that is the first page.
        cursor = None
        keys = _merged_keys(session, account, brand, types, None, per_page + 1)
    has_more = len(keys) > per_page
    keys = keys[:per_page]
    if cursor is not None and not cursor.older:
        keys.reverse()
        newer = encode_cursor(Cursor(keys[0], older=False)) if keys else None
        older = encode_cursor(Cursor(keys[-1], older=True)) if keys else None
    else:
        newer = encode_cursor(Cursor(keys[0], older=False)) if cursor and keys else None
        older = encode_cursor(Cursor(keys[-1], older=True)) if has_more else None
    entries = read_entries(session, account, keys, locale=locale, brands=brands)
    return TimelinePage(entries=entries, older=older, newer=newer, is_first=cursor is None)


# ---- The merged order -------------------------------------------------------------------


def _merged_keys(
    session: Session,
    account: Account,
    brand: Brand | None,
    types: Sequence[EntryType],
    cursor: Cursor | None,
    limit: int,
) -> list[Position]:
    branches = [
        _branch(at, id_, source, where, cursor, limit)
        for at, id_, source, where in _sources(account, brand, types)
    ]
    if not branches:
        return []
    merged = union_all(*branches).subquery("timeline")
    descending = cursor is None or cursor.older
    order = (
        (merged.c.at.desc(), merged.c.source.desc(), merged.c.id.desc())
        if descending
        else (merged.c.at.asc(), merged.c.source.asc(), merged.c.id.asc())
    )
    rows = session.execute(
        select(merged.c.at, merged.c.source, merged.c.id).order_by(*order).limit(limit)
    )
    return [Position(at, Source(source), int(id_)) for at, source, id_ in rows]


_Branch = tuple[
    InstrumentedAttribute[datetime], InstrumentedAttribute[int], Source, list[ColumnElement[bool]]
]


def _sources(account: Account, brand: Brand | None, types: Sequence[EntryType]) -> list[_Branch]:
    """Each source the filters keep: its time and id columns and its conditions."""
    sources: list[_Branch] = []
    if EntryType.CONSENTS in types:
        where = [ConsentEvent.subject_key == account.subject_key]
        if brand is not None:
            where.append(ConsentEvent.brand_slug == brand.slug)
        sources.append((ConsentEvent.occurred_at, ConsentEvent.seq, Source.CONSENT, where))
    kinds = _account_condition(brand, types)
    if kinds is not None:
        sources.append(
            (
                AccountEvent.created_at,
                AccountEvent.id,
                Source.ACCOUNT,
                [AccountEvent.account_id == account.id, kinds],
            )
        )
    if EntryType.INTERACTIONS in types:
        where = [Interaction.account_id == account.id]
        if brand is not None:
            where.append(Interaction.brand_id == brand.id)
        sources.append((Interaction.occurred_at, Interaction.id, Source.INTERACTION, where))
    if EntryType.REQUESTS in types and brand is None:
        sources.append(
            (
                DataRequest.requested_at,
                DataRequest.id,
                Source.REQUEST,
                [DataRequest.account_id == account.id],
            )
        )
    return sources


def _account_condition(
    brand: Brand | None, types: Sequence[EntryType]
) -> ColumnElement[bool] | None:
    """Which account events the filters keep (None: none of them)."""
    interests = EntryType.INTERESTS in types
    account = EntryType.ACCOUNT in types and brand is None
    if brand is not None and interests:
        intent_id = AccountEvent.detail["intent"].as_integer()
        return and_(
            AccountEvent.kind.in_(INTEREST_KINDS),
            or_(
                AccountEvent.detail["brand"].as_string() == brand.slug,
                exists().where(
                    IntentBrand.intent_id == intent_id, IntentBrand.brand_id == brand.id
                ),
            ),
        )
    if interests and account:
        return AccountEvent.kind.not_in(_SECURITY_ONLY_KINDS)
    if interests:
        return AccountEvent.kind.in_(INTEREST_KINDS)
    if account:
        return AccountEvent.kind.not_in((*_SECURITY_ONLY_KINDS, *INTEREST_KINDS))
    return None


def _branch(
    at: InstrumentedAttribute[datetime],
    id_: InstrumentedAttribute[int],
    source: Source,
    where: list[ColumnElement[bool]],
    cursor: Cursor | None,
    limit: int,
) -> Select[Any]:
    """One source's next ``limit`` entries in the merged order, read along its index."""
    query = select(
        at.label("at"), literal_column(f"'{source.value}'", String).label("source"), id_.label("id")
    ).where(*where)
    descending = cursor is None or cursor.older
    if cursor is not None:
        query = query.where(*_after(at, id_, source, cursor))
    query = query.order_by(*((at.desc(), id_.desc()) if descending else (at.asc(), id_.asc())))
    # Each branch is a subquery: SQLite refuses a LIMIT inside a compound SELECT.
    cut = query.limit(limit).subquery()
    return select(cut.c.at, cut.c.source, cut.c.id)


def _after(
    at: InstrumentedAttribute[datetime],
    id_: InstrumentedAttribute[int],
    source: Source,
    cursor: Cursor,
) -> list[ColumnElement[bool]]:
    """``(at, source, id)`` beyond the cursor, written per branch (its source is fixed) so
    that the database reads the branch's index from the cursor on."""
    p = cursor.position
    moment = literal(p.at, at.type)
    if cursor.older:
        if source < p.source:
            return [at <= moment]
        if source > p.source:
            return [at < moment]
        return [at <= moment, tuple_(at, id_) < tuple_(moment, literal(p.id, id_.type))]
    if source > p.source:
        return [at >= moment]
    if source < p.source:
        return [at > moment]
    return [at >= moment, tuple_(at, id_) > tuple_(moment, literal(p.id, id_.type))]
