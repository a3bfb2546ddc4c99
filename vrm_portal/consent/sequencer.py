"""The ledger's sequencer: gives recorded consent events their place in the chain.

A consent change (``service``) commits the consumer's new state, its signed receipt and
an intake row (``consent_event_intake``) without touching the ledger head: the receipt
names the event by id and content hash and promises its integration by ``integrateBy``
(``MAX_DELAY``), as a certificate transparency SCT does. ``integrate`` then takes the
committed intake rows in ascending id, in batches, and in one transaction per batch:

- locks the ledger head (``ledger.lock_head``): only one sequencer integrates at a time,
  whatever the number of workers, and a worker that dies loses its lock with its
  connection; a second sequencer waits, then finds only what is left;
- appends the events (``seq``, ``prev_hash``, chain hash, Merkle leaves), then, brand by
  brand in ascending id (the project's lock order), their feed entries and webhook
  outbox rows; fills each receipt's ``event_seq`` and each state's ``last_event_seq``;
- deletes the intake rows.

A batch commits whole or not at all, so a sequencer killed mid-batch integrates nothing
twice and loses nothing. ``consent_events`` keeps exactly its meaning (gapless ``seq``,
chain, tree leaves); only the moment an event enters it moves off the request.

Where it runs (``LEDGER_SEQUENCER``): ``inline`` integrates in the change's own
transaction, right after the intake row is written (the tests, and a portal without a
worker: the head lock is then on the request path, as before); ``worker`` leaves it to
the job engine, nudged after each commit (``vrm.sequence``) and swept every tick.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app, has_app_context
from sqlalchemy import Table, bindparam, delete, exists, select, update
from sqlalchemy.orm import Session

from vrm_portal.brands import feed
from vrm_portal.brands.models import ChangeKind
from vrm_portal.consent import ledger
from vrm_portal.consent.models import (
    Action,
    ConsentReceipt,
    ConsentState,
    EventIntake,
)
from vrm_portal.jobs.engine import note_sequencer_due

#: What every receipt promises: its event is in the ledger this long after the change
#: at the latest (nudged at each commit, swept every tick; see CONTRIBUTING).
MAX_DELAY = timedelta(minutes=5)
BATCH = 500
INLINE = "inline"
WORKER = "worker"

_INTAKE = cast(Table, EventIntake.__table__)
_RECEIPTS = cast(Table, ConsentReceipt.__table__)
_STATES = cast(Table, ConsentState.__table__)
_FEED_KINDS = {
    Action.GRANTED.value: ChangeKind.CONSENT_GRANTED,
    Action.WITHDRAWN.value: ChangeKind.CONSENT_WITHDRAWN,
    Action.EXPIRED.value: ChangeKind.CONSENT_EXPIRED,
}
_SET_RECEIPT_SEQ = (
    update(_RECEIPTS)
    .where(_RECEIPTS.c.receipt_id == bindparam("r_id"))
    .values(event_seq=bindparam("r_seq"))
)
_SET_STATE_SEQ = (
    update(_STATES)
    .where(_STATES.c.id == bindparam("s_id"))
    .values(last_event_seq=bindparam("s_seq"))
)


def mode() -> str:
    """``inline`` or ``worker``: where this app integrates (``inline`` outside an app)."""
    if not has_app_context():
        return INLINE
    return str(current_app.config.get("LEDGER_SEQUENCER_MODE", INLINE))


@dataclass(frozen=True)
class Integrated:
    """One event integrated: its id and the place it was given."""

    event_id: str
    seq: int
    hash: bytes


def pending(session: Session) -> bool:
    """Whether committed events wait for integration (no lock taken)."""
    return bool(session.scalar(select(exists().where(_INTAKE.c.id.is_not(None)))))


def integrate(
    session: Session, *, head: ledger.Head | None = None, limit: int = BATCH
) -> list[Integrated]:
    """Integrate up to ``limit`` waiting events, oldest first, in the caller's transaction
    (which the caller commits: one batch, one transaction). ``head``: the ledger head if
    the caller already locked it in this transaction."""
    head = head or ledger.lock_head(session)
    rows = session.execute(
        select(
            _INTAKE.c.id,
            _INTAKE.c.content,
            _INTAKE.c.occurred_at,
            _INTAKE.c.receipt_id,
            _INTAKE.c.state_id,
            _INTAKE.c.brand_id,
            _INTAKE.c.pairwise_id,
            _INTAKE.c.feed_data,
        )
        .order_by(_INTAKE.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return []
    events = place(
        session,
        head,
        [
            Waiting(
                json.loads(row.content),
                row.occurred_at,
                row.brand_id,
                row.pairwise_id,
                row.feed_data,
            )
            for row in rows
        ],
    )
    session.execute(
        _SET_RECEIPT_SEQ,
        [{"r_id": row.receipt_id, "r_seq": e.seq} for row, e in zip(rows, events, strict=True)],
    )
    # Each state once, with its last event: a row updated twice in one transaction would
    # have its foreign key checked again (a KEY SHARE lock on its account row).
    last = {row.state_id: e.seq for row, e in zip(rows, events, strict=True) if row.state_id}
    if last:
        session.execute(
            _SET_STATE_SEQ, [{"s_id": state, "s_seq": seq} for state, seq in sorted(last.items())]
        )
    session.execute(delete(_INTAKE).where(_INTAKE.c.id.in_([row.id for row in rows])))
    return [Integrated(e.event_id, e.seq, e.hash) for e in events]


@dataclass(frozen=True)
class Waiting:
    """An event to place: its content (``NewEvent.content``), time and feed entry."""

    content: dict[str, Any]
    occurred_at: datetime
    brand_id: int
    pairwise_id: str
    feed_data: dict[str, Any]


def place(
    session: Session, head: ledger.Head, waiting: Sequence[Waiting]
) -> list[ledger.AppendedEvent]:
    """Give ``waiting`` events, in order, their place in the chain and in their brands'
    feeds (brands in ascending id, the lock order): the heart of ``integrate``, also
    called directly by a change integrated inline (no intake row then)."""
    events = ledger.append_contents(session, [(w.content, w.occurred_at) for w in waiting], head)
    entries: dict[int, list[tuple[ChangeKind, str, datetime, dict[str, Any]]]] = {}
    for w in waiting:
        entries.setdefault(w.brand_id, []).append(
            (_FEED_KINDS[w.content["action"]], w.pairwise_id, w.occurred_at, w.feed_data)
        )
    for brand_id in sorted(entries):
        feed.append_entries(session, brand_id, entries[brand_id])
    return events


def integrate_all(session_factory: Any, *, limit: int = BATCH) -> int:
    """Integrate everything waiting, one committed batch after another; returns how many.

    ``session_factory()`` gives the session to use (committed after each batch)."""
    total = 0
    while True:
        session: Session = session_factory()
        if not pending(session):
            session.rollback()
            return total
        try:
            done = integrate(session, limit=limit)
            session.commit()
        except BaseException:
            session.rollback()  # nothing of the batch stays; the next run takes it again
            raise
        total += len(done)
        if len(done) < limit:
            return total


def note_due(session: Session) -> None:
    """The transaction wrote intake rows: the job engine's sequencer is nudged after the
    commit (``jobs/engine.py``)."""
    note_sequencer_due(session)


def positions(session: Session, event_ids: Sequence[str]) -> dict[str, int]:
    """The ``seq`` given to each of ``event_ids`` that is integrated."""
    from vrm_portal.consent.models import ConsentEvent

    if not event_ids:
        return {}
    rows = session.execute(
        select(ConsentEvent.event_id, ConsentEvent.seq).where(
            ConsentEvent.event_id.in_(list(event_ids))
        )
    ).all()
    return {event_id: seq for event_id, seq in rows}
