"""Which of the brands' API reads carried a given consumer: the one rule behind "Who read
my data" and the export's access log.

The API records one ``AccessRecord`` per read (see ``history.models``). A read covers the
consumer when:

- ``consumer`` (one lookup) or ``consumers`` (a page of the brand's list): the range
  ``first_id..last_id`` of the brand's relationship ids holds the consumer's relationship
  with that brand, and the read came after that relationship existed (an id freed by an
  erasure may be given again on SQLite);
- ``changes`` (a page of the brand's change feed): the range of feed positions holds one
  of the consumer's entries in that brand's feed (found by their pairwise id).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select

from vrm_portal.brands.models import BrandChange, BrandRelationship
from vrm_portal.history.models import AccessKind, AccessRecord


def covers(relationship: type[BrandRelationship]) -> ColumnElement[bool]:
    """The access record is a read by the relationship's brand that carried the consumer."""
    listed = and_(
        AccessRecord.kind.in_((AccessKind.CONSUMER.value, AccessKind.CONSUMERS.value)),
        AccessRecord.last_id >= relationship.id,
        AccessRecord.first_id <= relationship.id,
        AccessRecord.at >= relationship.created_at,
    )
    in_feed = and_(
        AccessRecord.kind == AccessKind.CHANGES.value,
        exists().where(
            BrandChange.pairwise_id == relationship.pairwise_id,
            BrandChange.brand_id == AccessRecord.brand_id,
            BrandChange.seq >= AccessRecord.first_id,
            BrandChange.seq <= AccessRecord.last_id,
        ),
    )
    return and_(AccessRecord.brand_id == relationship.brand_id, or_(listed, in_feed))


def covered_record_ids(account_id: int) -> Select[int]:
    """The ids of every access record that carried the consumer, each once."""
    return (
        select(AccessRecord.id)
        .join(BrandRelationship, covers(BrandRelationship))
        .where(BrandRelationship.account_id == account_id)
    )
