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

The two cases are two index-friendly queries joined by a UNION (an OR of them would make
the database test every read of the brand).
"""

from __future__ import annotations

from sqlalchemy import Select, and_, select, union

from vrm_portal.brands.models import BrandChange, BrandRelationship
from vrm_portal.history.models import AccessKind, AccessRecord

_LISTS = (AccessKind.CONSUMER.value, AccessKind.CONSUMERS.value)


def covered_record_ids(account_id: int, brand_id: int | None = None) -> Select[int]:
    """The ids of every access record that carried the consumer (``brand_id``'s reads
    only, when given), each once."""
    mine = [BrandRelationship.account_id == account_id]
    if brand_id is not None:
        mine.append(BrandRelationship.brand_id == brand_id)
    listed = (
        select(AccessRecord.id)
        .join(
            BrandRelationship,
            and_(
                AccessRecord.brand_id == BrandRelationship.brand_id,
                AccessRecord.kind.in_(_LISTS),
                AccessRecord.last_id >= BrandRelationship.id,
                AccessRecord.first_id <= BrandRelationship.id,
                AccessRecord.at >= BrandRelationship.created_at,
            ),
        )
        .where(*mine)
    )
    in_feed = (
        select(AccessRecord.id)
        .select_from(BrandRelationship)
        .join(
            BrandChange,
            and_(
                BrandChange.pairwise_id == BrandRelationship.pairwise_id,
                BrandChange.brand_id == BrandRelationship.brand_id,
            ),
        )
        .join(
            AccessRecord,
            and_(
                AccessRecord.brand_id == BrandChange.brand_id,
                AccessRecord.kind == AccessKind.CHANGES.value,
                AccessRecord.last_id >= BrandChange.seq,
                AccessRecord.first_id <= BrandChange.seq,
            ),
        )
        .where(*mine)
    )
    return select(union(listed, in_feed).subquery("covered").c.id)
