"""The consent ledger: an append-only, hash-chained log of consent events (DESIGN §5).

Each event is stored as its canonical JSON document (sorted keys, UTF-8, no spaces),
which includes the previous event's hash; the event's hash is SHA-256 over that document.
Appending locks the single ``consent_ledger_head`` row, so concurrent writers on
PostgreSQL queue up and the chain never forks or skips a number; on SQLite, writers are
already serialised by ``BEGIN IMMEDIATE``.

Verification streams the table in ``seq`` order with the driver's cursor, so checking a
million events keeps memory flat.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy.orm import Session

from vrm_portal.consent.models import ConsentEvent, LedgerHead
from vrm_portal.log import tree
from vrm_portal.log.models import LogNode

GENESIS_HASH = bytes(32)
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def canonical_json(document: dict[str, Any]) -> str:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8 text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class NewEvent:
    """What a consent change says, before it is given its place in the chain."""

    subject_key: str
    brand: str
    purpose: str
    purpose_version: int
    #: SHA-256 hex of the exact purpose text shown (``PurposeVersion.content_hash``).
    text_hash: str
    action: str
    method: str
    #: ``subject`` (the consumer), ``system`` (expiry), ``operator`` (CLI) or ``staff:<key>``.
    actor: str
    language: str
    occurred_at: datetime
    expires_at: datetime | None = None

    def document(self, seq: int, event_id: str, prev_hash: bytes) -> dict[str, Any]:
        return positioned(self.content(event_id), seq, prev_hash)

    def content(self, event_id: str) -> dict[str, Any]:
        """The event without its place in the chain (``seq``, ``prev_hash``): what a
        receipt signed before integration names by its hash (``content_hash``)."""
        return {
            "event_id": event_id,
            "subject": self.subject_key,
            "brand": self.brand,
            "purpose": self.purpose,
            "purpose_version": self.purpose_version,
            "text_hash": self.text_hash,
            "action": self.action,
            "method": self.method,
            "actor": self.actor,
            "language": self.language,
            "occurred_at": format_timestamp(self.occurred_at),
            "expires_at": format_timestamp(self.expires_at) if self.expires_at else None,
        }


#: The keys the sequencer adds to an event's content when it integrates it.
POSITION_KEYS = ("seq", "prev_hash")


def positioned(content: dict[str, Any], seq: int, prev_hash: bytes) -> dict[str, Any]:
    """The event document: its content with its place in the chain."""
    return {**content, "seq": seq, "prev_hash": prev_hash.hex()}


def content_hash(content: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical JSON of an event's content (its document without
    ``POSITION_KEYS``): the hash a receipt signed before integration states."""
    return hashlib.sha256(canonical_json(content).encode()).digest()


def content_hash_of_body(body: str) -> bytes:
    """``content_hash`` of an integrated event, from its stored body."""
    document = json.loads(body)
    for key in POSITION_KEYS:
        document.pop(key, None)
    return content_hash(document)


@dataclass
class Head:
    """The last link of the chain, as locked by ``lock_head`` for this transaction."""

    seq: int
    hash: bytes
    #: The Merkle tree's right edge (see ``log/tree.py``), kept with the head.
    frontier: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class AppendedEvent:
    """An event just written: its place in the chain, its id, its hash and its body."""

    seq: int
    event_id: str
    hash: bytes
    body: str


_EVENTS = cast(Table, ConsentEvent.__table__)
_HEAD = cast(Table, LedgerHead.__table__)
_NODES = cast(Table, LogNode.__table__)


def lock_head(session: Session) -> Head:
    """The chain's head, its row locked until the transaction ends (created if missing).

    Appends go through SQLAlchemy Core, not the unit of work: this is the hot path of
    every consent change.
    """
    row = session.execute(
        select(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.frontier).where(_HEAD.c.id == 1).with_for_update()
    ).one_or_none()
    if row is None:
        session.execute(insert(_HEAD).values(id=1, seq=0, hash=GENESIS_HASH, frontier=b""))
        return Head(0, GENESIS_HASH, [])
    return Head(row.seq, bytes(row.hash), tree.decode_frontier(row.frontier, row.seq))


def append(session: Session, event: NewEvent, head: Head | None = None) -> AppendedEvent:
    """Append ``event`` at the end of the chain and move the head. ``head`` must come from
    ``lock_head`` in this transaction."""
    head = head or lock_head(session)
    seq = head.seq + 1
    event_id = str(uuid.uuid4())
    body = canonical_json(event.document(seq, event_id, head.hash))
    digest = hashlib.sha256(body.encode()).digest()
    session.execute(
        insert(_EVENTS).values(
            seq=seq,
            event_id=event_id,
            subject_key=event.subject_key,
            brand_slug=event.brand,
            purpose_key=event.purpose,
            action=event.action,
            occurred_at=event.occurred_at,
            body=body,
            hash=digest,
        )
    )
    frontier = grow_tree(session, head, seq, digest)
    session.execute(
        update(_HEAD).where(_HEAD.c.id == 1).values(seq=seq, hash=digest, frontier=frontier)
    )
    head.seq = seq
    head.hash = digest
    return AppendedEvent(seq, event_id, digest, body)


def append_all(session: Session, events: Sequence[NewEvent], head: Head) -> list[AppendedEvent]:
    """Append ``events``, in order, as many ``append`` calls would, in three statements
    whatever their number (the events, the tree's new nodes, the head). ``head`` must come
    from ``lock_head`` in this transaction."""
    if not events:
        return []
    return append_contents(
        session,
        [(event.content(str(uuid.uuid4())), event.occurred_at) for event in events],
        head,
    )


def append_contents(
    session: Session, contents: Sequence[tuple[dict[str, Any], datetime]], head: Head
) -> list[AppendedEvent]:
    """Append events given by their content (``NewEvent.content``) and time, in order:
    the sequencer's integration. Three statements whatever their number."""
    if not contents:
        return []
    appended: list[AppendedEvent] = []
    rows: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    for content, occurred_at in contents:
        seq = head.seq + 1
        event_id = content["event_id"]
        body = canonical_json(positioned(content, seq, head.hash))
        digest = hashlib.sha256(body.encode()).digest()
        rows.append(
            {
                "seq": seq,
                "event_id": event_id,
                "subject_key": content["subject"],
                "brand_slug": content["brand"],
                "purpose_key": content["purpose"],
                "action": content["action"],
                "occurred_at": occurred_at,
                "body": body,
                "hash": digest,
            }
        )
        nodes.extend(
            {"level": n.level, "idx": n.idx, "hash": n.hash}
            for n in tree.append_leaf(head.frontier, seq - 1, digest)
        )
        head.seq, head.hash = seq, digest
        appended.append(AppendedEvent(seq, event_id, digest, body))
    session.execute(insert(_EVENTS), rows)
    session.execute(insert(_NODES), nodes)
    session.execute(
        update(_HEAD)
        .where(_HEAD.c.id == 1)
        .values(seq=head.seq, hash=head.hash, frontier=tree.encode_frontier(head.frontier))
    )
    return appended


def grow_tree(session: Session, head: Head, seq: int, digest: bytes) -> bytes:
    """Add leaf ``seq - 1`` (input: the event's hash) to the public log's Merkle tree:
    the complete subtrees it closes are inserted; returns the new right edge to store."""
    nodes = tree.append_leaf(head.frontier, seq - 1, digest)
    session.execute(
        insert(_NODES), [{"level": n.level, "idx": n.idx, "hash": n.hash} for n in nodes]
    )
    return tree.encode_frontier(head.frontier)


def document_of(event: ConsentEvent) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(event.body)
    return document


@dataclass(frozen=True)
class Verification:
    """The outcome of checking the whole chain."""

    checked: int
    ok: bool
    first_bad_seq: int | None = None
    first_bad_event_id: str | None = None
    problem: str | None = None


#: The indexed columns, with ``occurred_at`` rendered by the database in the body's
#: timestamp format (no datetime objects to build and format per row).
_QUERIES = {
    "postgresql": (
        "SELECT seq, subject_key, brand_slug, purpose_key, action, "
        "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "body, hash FROM consent_events ORDER BY seq"
    ),
    # SQLAlchemy stores SQLite timestamps as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC).
    "sqlite": (
        "SELECT seq, subject_key, brand_slug, purpose_key, action, "
        "replace(occurred_at, ' ', 'T') || 'Z', body, hash FROM consent_events ORDER BY seq"
    ),
}


def _rows(connection: Connection, batch: int) -> Iterator[Sequence[Any]]:
    """Batches of raw rows straight from the driver (a server-side cursor on PostgreSQL)."""
    dbapi: Any = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        cursor = dbapi.cursor(name="vrm_verify_ledger")
        cursor.itersize = batch
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(_QUERIES[connection.dialect.name])
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


def _event_id_in(body: str) -> str | None:
    try:
        value = json.loads(body).get("event_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def verify(
    connection: Connection,
    *,
    batch: int = 10_000,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Check every event in order: numbering, hash, link to the previous event, and that
    the indexed columns say what the hashed document says. Stops at the first bad event.

    ``progress`` is called after each batch with the number of events checked so far
    (the privacy office's progress bar).

    The body's keys are sorted, so each column sits at a known place: four substring
    tests check the link and all six columns at once (the slow path names the culprit).
    """
    expected_seq = 1
    prev_hex = GENESIS_HASH.hex()
    sha256 = hashlib.sha256
    checked = 0
    for rows in _rows(connection, batch):
        for seq, subject, brand, purpose, action, occurred_at, body, stored_hash in rows:
            stored = bytes(stored_hash)
            if (
                seq != expected_seq
                or sha256(body.encode()).digest() != stored
                or not body.startswith(f'{{"action":"{action}","actor":')
                or f'"brand":"{brand}","event_id":' not in body
                or f'"occurred_at":"{occurred_at}","prev_hash":"{prev_hex}","purpose":"{purpose}",'
                not in body
                or f'"seq":{seq},"subject":"{subject}","text_hash":' not in body
            ):
                problem = _diagnose(expected_seq, seq, body, stored, prev_hex)
                return Verification(checked, False, seq, _event_id_in(body), problem)
            prev_hex = stored.hex()
            expected_seq += 1
            checked += 1
        if progress is not None:
            progress(checked)
    head = connection.execute(select(LedgerHead.seq, LedgerHead.hash)).first()
    if head is not None and (head.seq != checked or bytes(head.hash).hex() != prev_hex):
        return Verification(
            checked,
            False,
            checked + 1 if head.seq > checked else checked,
            None,
            f"the chain ends at event #{checked} but its head says #{head.seq} "
            "(events were removed from the end)",
        )
    return Verification(checked, True)


def _diagnose(expected_seq: int, seq: int, body: str, stored: bytes, prev_hex: str) -> str:
    if seq != expected_seq:
        return f"expected event #{expected_seq} here, found #{seq} (gap or reordering)"
    if hashlib.sha256(body.encode()).digest() != stored:
        return "its hash does not match its content (the event was altered)"
    if f'"prev_hash":"{prev_hex}"' not in body:
        return "it does not link to the previous event (an event was removed or inserted)"
    return "its columns disagree with its hashed content (a column was altered)"
