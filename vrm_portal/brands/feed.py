"""Each brand's change feed: what a brand's API client follows with ``/changes``.

Every entry takes the next ``seq`` of its brand with one ``UPDATE brands SET feed_seq =
feed_seq + 1 ... RETURNING``: the brand's row stays locked until the transaction ends, so
the entries of one brand commit in ``seq`` order and a reader that has seen ``seq`` n
has also seen every entry before it. A rolled-back change gives its number back: no gap.
A batch of entries for one brand (``append_changes``) takes its numbers with one ``+ n``.

Lock order, to stay free of deadlocks: the ledger head (consent changes) first, then
brand rows in ascending id. In the same transaction the entry is queued in the webhook
outbox for each active endpoint of the brand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, insert, literal, select, update
from sqlalchemy.orm import Session

from vrm_portal.brands.models import Brand, BrandChange, BrandRelationship, ChangeKind
from vrm_portal.clock import api_time
from vrm_portal.jobs.engine import note_webhooks_due
from vrm_portal.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

_BRANDS = cast(Table, Brand.__table__)
_CHANGES = cast(Table, BrandChange.__table__)
_DELIVERIES = cast(Table, WebhookDelivery.__table__)
_ENDPOINTS = cast(Table, WebhookEndpoint.__table__)


def append_change(
    session: Session,
    brand_id: int,
    kind: ChangeKind,
    pairwise_id: str,
    occurred_at: datetime,
    data: dict[str, Any] | None = None,
) -> int:
    """Add an entry to ``brand_id``'s feed (and its webhook outbox); returns its ``seq``."""
    seq: int = session.execute(
        update(_BRANDS)
        .where(_BRANDS.c.id == brand_id)
        .values(feed_seq=_BRANDS.c.feed_seq + 1)
        .returning(_BRANDS.c.feed_seq)
    ).scalar_one()
    session.execute(
        insert(_CHANGES).values(
            brand_id=brand_id,
            seq=seq,
            kind=kind.value,
            pairwise_id=pairwise_id,
            occurred_at=occurred_at,
            data=data or {},
        )
    )
    queued = session.execute(
        insert(_DELIVERIES).from_select(
            [
                "endpoint_id",
                "brand_id",
                "change_seq",
                "status",
                "attempts",
                "created_at",
                "next_attempt_at",
            ],
            select(
                _ENDPOINTS.c.id,
                literal(brand_id),
                literal(seq),
                literal(DeliveryStatus.PENDING.value),
                literal(0),
                literal(occurred_at, type_=_DELIVERIES.c.created_at.type),
                literal(occurred_at, type_=_DELIVERIES.c.next_attempt_at.type),
            ).where(_ENDPOINTS.c.brand_id == brand_id, _ENDPOINTS.c.disabled_at.is_(None)),
        )
    )
    if cast(CursorResult[Any], queued).rowcount:
        note_webhooks_due(session)
    return seq


def append_changes(
    session: Session,
    brand_id: int,
    kind: ChangeKind,
    occurred_at: datetime,
    entries: Sequence[tuple[str, dict[str, Any]]],
) -> range:
    """Add ``entries`` (pairwise id, data), in order, to ``brand_id``'s feed and its webhook
    outbox: what as many ``append_change`` calls would do (the same brand row lock, numbers
    without gap), in three statements whatever their number. Returns their ``seq``s."""
    if not entries:
        return range(0)
    last: int = session.execute(
        update(_BRANDS)
        .where(_BRANDS.c.id == brand_id)
        .values(feed_seq=_BRANDS.c.feed_seq + len(entries))
        .returning(_BRANDS.c.feed_seq)
    ).scalar_one()
    first = last - len(entries) + 1
    session.execute(
        insert(_CHANGES),
        [
            {
                "brand_id": brand_id,
                "seq": first + offset,
                "kind": kind.value,
                "pairwise_id": pairwise_id,
                "occurred_at": occurred_at,
                "data": data,
            }
            for offset, (pairwise_id, data) in enumerate(entries)
        ],
    )
    queued = session.execute(
        insert(_DELIVERIES).from_select(
            [
                "endpoint_id",
                "brand_id",
                "change_seq",
                "status",
                "attempts",
                "created_at",
                "next_attempt_at",
            ],
            select(
                _ENDPOINTS.c.id,
                literal(brand_id),
                _CHANGES.c.seq,
                literal(DeliveryStatus.PENDING.value),
                literal(0),
                literal(occurred_at, type_=_DELIVERIES.c.created_at.type),
                literal(occurred_at, type_=_DELIVERIES.c.next_attempt_at.type),
            )
            .join_from(_ENDPOINTS, _CHANGES, _CHANGES.c.brand_id == _ENDPOINTS.c.brand_id)
            .where(
                _ENDPOINTS.c.brand_id == brand_id,
                _ENDPOINTS.c.disabled_at.is_(None),
                _CHANGES.c.seq.between(first, last),
            )
            .order_by(_CHANGES.c.seq, _ENDPOINTS.c.id),
        )
    )
    if cast(CursorResult[Any], queued).rowcount:
        note_webhooks_due(session)
    return range(first, last + 1)


def append_entries(
    session: Session,
    brand_id: int,
    entries: Sequence[tuple[ChangeKind, str, datetime, dict[str, Any]]],
) -> range:
    """Add ``entries`` (kind, pairwise id, time, data), in order, to ``brand_id``'s feed
    and its webhook outbox, like ``append_changes`` (three statements) but each with its
    own kind and time: the consent sequencer's batches. Returns their ``seq``s."""
    if not entries:
        return range(0)
    last: int = session.execute(
        update(_BRANDS)
        .where(_BRANDS.c.id == brand_id)
        .values(feed_seq=_BRANDS.c.feed_seq + len(entries))
        .returning(_BRANDS.c.feed_seq)
    ).scalar_one()
    first = last - len(entries) + 1
    session.execute(
        insert(_CHANGES),
        [
            {
                "brand_id": brand_id,
                "seq": first + offset,
                "kind": kind.value,
                "pairwise_id": pairwise_id,
                "occurred_at": occurred_at,
                "data": data,
            }
            for offset, (kind, pairwise_id, occurred_at, data) in enumerate(entries)
        ],
    )
    queued = session.execute(
        insert(_DELIVERIES).from_select(
            [
                "endpoint_id",
                "brand_id",
                "change_seq",
                "status",
                "attempts",
                "created_at",
                "next_attempt_at",
            ],
            select(
                _ENDPOINTS.c.id,
                literal(brand_id),
                _CHANGES.c.seq,
                literal(DeliveryStatus.PENDING.value),
                literal(0),
                _CHANGES.c.occurred_at,
                _CHANGES.c.occurred_at,
            )
            .join_from(_ENDPOINTS, _CHANGES, _CHANGES.c.brand_id == _ENDPOINTS.c.brand_id)
            .where(
                _ENDPOINTS.c.brand_id == brand_id,
                _ENDPOINTS.c.disabled_at.is_(None),
                _CHANGES.c.seq.between(first, last),
            )
            .order_by(_CHANGES.c.seq, _ENDPOINTS.c.id),
        )
    )
    if cast(CursorResult[Any], queued).rowcount:
        note_webhooks_due(session)
    return range(first, last + 1)


def append_for_relationships(
    session: Session,
    account_id: int,
    brand_ids: set[int],
    kind: ChangeKind,
    occurred_at: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """Tell each of ``brand_ids`` that knows the consumer (has a relationship) of a change.

    Brands the consumer never dealt with hear nothing: the consumer does not exist for them.
    """
    if not brand_ids:
        return
    known = session.execute(
        select(BrandRelationship.brand_id, BrandRelationship.pairwise_id)
        .where(
            BrandRelationship.account_id == account_id,
            BrandRelationship.brand_id.in_(brand_ids),
        )
        .order_by(BrandRelationship.brand_id)
    ).all()
    for brand_id, pairwise_id in known:
        append_change(session, brand_id, kind, pairwise_id, occurred_at, data)


def change_document(
    seq: int, kind: str, pairwise_id: str, occurred_at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """A feed entry as brands receive it, from ``/api/v1/changes`` and from webhooks."""
    return {
        "seq": seq,
        "type": kind,
        "consumer_id": pairwise_id or None,
        "occurred_at": api_time(occurred_at),
        "data": {key: _utc_text(key, value) for key, value in data.items()},
    }


def _utc_text(key: str, value: Any) -> Any:
    """A time in an entry's data as the API writes times (``…Z``), whatever form was stored
    (consent changes stored ``expires_at`` as ``+00:00``)."""
    if key.endswith("_at") and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            return api_time(moment)
    return value
