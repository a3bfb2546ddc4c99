"""Who read my data: every API read by a brand that carried something about the consumer.

Which reads covered the consumer is decided by ``history.coverage``, the same rule as the
export's access log.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vrm_portal.brands.models import ApiClient, Brand, BrandRelationship
from vrm_portal.history.coverage import covered_record_ids
from vrm_portal.history.models import AccessKind, AccessRecord, StaffAccess

DEFAULT_PER_PAGE = 25


class ReadKind(enum.StrEnum):
    LOOKUP = AccessKind.CONSUMER.value
    LIST_PAGE = AccessKind.CONSUMERS.value
    FEED_PAGE = AccessKind.CHANGES.value


KIND_LABELS = {
    ReadKind.LOOKUP: _l("Looked you up"),
    ReadKind.LIST_PAGE: _l("Read a page of its customer list that included you"),
    ReadKind.FEED_PAGE: _l("Read its change feed, which included changes about you"),
}

_KINDS = frozenset(kind.value for kind in ReadKind)

FIELD_LABELS = {
    "consents": _l("Your consents to this brand"),
    "interests": _l("Your interests"),
    "intents": _l("Your plans"),
    "profile.given_name": _l("Given name"),
    "profile.family_name": _l("Family name"),
    "profile.language": _l("Language"),
    "profile.email": _l("Email address"),
    "profile.phone": _l("Phone number"),
    "profile.postal_address": _l("Postal address"),
    "consent": _l("Notices of changes (consents given or withdrawn, interests and plans changed)"),
}


@dataclass(frozen=True)
class Read:
    at: datetime
    brand_name: str
    brand_slug: str
    #: The API client's public id and its name (None once the client is deleted).
    client_id: str | None
    client_name: str | None
    #: ``consumer``, ``consumers`` or ``changes`` (``ReadKind``).
    kind: str
    kind_label: str
    scope: str
    fields: tuple[str, ...]
    #: How many consumers (or feed entries) the read carried in all.
    count: int

    @property
    def is_page(self) -> bool:
        return self.kind != ReadKind.LOOKUP.value


@dataclass(frozen=True)
class BrandReads:
    brand: Brand
    reads: int
    last_at: datetime | None


@dataclass(frozen=True)
class ReadsPage:
    items: list[Read]
    page: int
    pages: int
    total: int


def field_label(name: str) -> str:
    label = FIELD_LABELS.get(name)
    return str(label) if label is not None else name


def reads_by_brand(session: Session, account_id: int) -> list[BrandReads]:
    """Each brand the consumer has a relationship with: how many reads covered them, and
    the last one (brands that never read anything included), by brand name."""
    covered = covered_record_ids(account_id).subquery("covered")
    reads = (
        select(
            AccessRecord.brand_id,
            func.count(AccessRecord.id).label("reads"),
            func.max(AccessRecord.at).label("last_at"),
        )
        .join(covered, covered.c.id == AccessRecord.id)
        .group_by(AccessRecord.brand_id)
        .subquery("reads")
    )
    rows = session.execute(
        select(Brand, func.coalesce(reads.c.reads, 0), reads.c.last_at)
        .join(BrandRelationship, BrandRelationship.brand_id == Brand.id)
        .outerjoin(reads, reads.c.brand_id == Brand.id)
        .where(BrandRelationship.account_id == account_id)
        .order_by(Brand.name, Brand.id)
    )
    return [BrandReads(brand, count, last_at) for brand, count, last_at in rows]


def reads_of(
    session: Session,
    account_id: int,
    *,
    brand: Brand | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> ReadsPage:
    """The reads that covered the consumer (only ``brand``'s when given), newest first.

    A page number that names no page gives the first page, so a stale link still shows
    something sensible.
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    covered = covered_record_ids(account_id, brand.id if brand is not None else None).subquery(
        "covered"
    )
    total = session.scalar(select(func.count()).select_from(covered)) or 0
    pages = max(1, -(-total // per_page))
    number = page if 1 <= page <= pages else 1
    rows = session.execute(
        select(AccessRecord, Brand.name, Brand.slug, ApiClient.client_id, ApiClient.name)
        .select_from(AccessRecord)
        .join(covered, covered.c.id == AccessRecord.id)
        .join(Brand, Brand.id == AccessRecord.brand_id)
        .outerjoin(ApiClient, ApiClient.id == AccessRecord.client_pk)
        .order_by(AccessRecord.at.desc(), AccessRecord.id.desc())
        .offset((number - 1) * per_page)
        .limit(per_page)
    )
    items = []
    for record, brand_name, brand_slug, client_id, client_name in rows:
        label = KIND_LABELS.get(ReadKind(record.kind)) if record.kind in _KINDS else None
        fields = record.fields if isinstance(record.fields, list) else []
        items.append(
            Read(
                at=record.at,
                brand_name=brand_name,
                brand_slug=brand_slug,
                client_id=client_id,
                client_name=client_name or None,
                kind=record.kind,
                kind_label=str(label) if label is not None else record.kind,
                scope=record.scope,
                fields=tuple(field_label(str(f)) for f in fields),
                count=record.count,
            )
        )
    return ReadsPage(items=items, page=number, pages=pages, total=total)


@dataclass(frozen=True)
class OfficeLookup:
    """A look-up of the consumer's data by the portal's privacy office."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class OfficeLookups:
    items: list[OfficeLookup]
    total: int


def office_lookups_of(session: Session, subject_key: str, *, limit: int = 50) -> OfficeLookups:
    """The privacy office's look-ups that showed the consumer's data, newest first (the
    ``limit`` newest, and how many there are in all)."""
    mine = StaffAccess.subject_key == subject_key
    total = session.scalar(select(func.count()).select_from(StaffAccess).where(mine)) or 0
    rows = session.execute(
        select(StaffAccess.at, StaffAccess.reason)
        .where(mine)
        .order_by(StaffAccess.at.desc(), StaffAccess.id.desc())
        .limit(limit)
    )
    return OfficeLookups([OfficeLookup(at, reason) for at, reason in rows], int(total))
