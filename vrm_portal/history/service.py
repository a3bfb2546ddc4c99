"""Writing what brands did: interactions they push, and the record of every read."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vrm_portal.history.models import AccessRecord, Interaction

_ACCESS = cast(Table, AccessRecord.__table__)


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was already used for a different request body."""


def record_access(session: Session, row: dict[str, Any]) -> None:
    """Write one access record (``recorder.access_row``) in the session's transaction."""
    session.execute(insert(_ACCESS).values(**row))


@dataclass(frozen=True)
class Recorded:
    interaction: Interaction
    #: False when an earlier request with the same Idempotency-Key had recorded it.
    created: bool


def body_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_interaction(
    session: Session,
    *,
    account_id: int,
    brand_id: int,
    client_pk: int,
    body: dict[str, Any],
    occurred_at: datetime,
    idempotency_key: str | None,
    now: datetime,
) -> Recorded:
    """Store an interaction; a retry by the same client with the same key and body
    returns the first one.

    Keys belong to the client that sent them (the unique constraint is (client, key)):
    another client of the brand is never replayed this client's interaction, and may use
    the same key for its own. Two concurrent requests with one key: the constraint lets
    one insert win; the other finds the winner's row (a savepoint keeps the transaction).
    """
    digest = body_hash({"account_id": account_id, "body": body})
    if idempotency_key is not None:
        existing = _by_key(session, brand_id, client_pk, idempotency_key)
        if existing is not None:
            return _replay(existing, digest)
    interaction = Interaction(
        interaction_id=str(uuid.uuid4()),
        account_id=account_id,
        brand_id=brand_id,
        client_pk=client_pk,
        type=body["type"],
        occurred_at=occurred_at,
        recorded_at=now,
        summary=body["summary"],
        body=body,
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    try:
        with session.begin_nested():
            session.add(interaction)
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = _by_key(session, brand_id, client_pk, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, digest)
    return Recorded(interaction, created=True)


def _by_key(session: Session, brand_id: int, client_pk: int | None, key: str) -> Interaction | None:
    """The interaction ``client_pk`` recorded under ``key`` (any client's when None)."""
    query = select(Interaction).where(
        Interaction.brand_id == brand_id, Interaction.idempotency_key == key
    )
    if client_pk is not None:
        query = query.where(Interaction.client_pk == client_pk)
    return session.scalar(query.limit(1))


def _replay(existing: Interaction, digest: str) -> Recorded:
    if existing.request_hash != digest:
        raise IdempotencyConflict(existing.interaction_id)
    return Recorded(existing, created=False)


def brand_interaction(
    session: Session, brand_id: int, account_id: int, interaction_id: str
) -> Interaction | None:
    """The interaction ``interaction_id`` the brand recorded for ``account_id`` (the
    ``Location`` of a recorded interaction); None for any other brand's or consumer's."""
    return session.scalar(
        select(Interaction).where(
            Interaction.interaction_id == interaction_id,
            Interaction.brand_id == brand_id,
            Interaction.account_id == account_id,
        )
    )
