"""One consumer's event in the public log: its leaf, the first checkpoint that includes
it, and its inclusion proof against the latest checkpoint, checked here before it is
shown ("Check it is in the public log" on the consumer's history)."""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentEvent
from vrm_portal.jobs.engine import ScheduleError, parse_cron
from vrm_portal.log import merkle, note, tree
from vrm_portal.log.models import LogCheckpoint
from vrm_portal.log.service import checkpoint_at_least, latest_checkpoint

PROOF_FORMAT = "vrm-inclusion-proof/1"
#: How far ahead the next run of the checkpoint schedule is looked for.
SCHEDULE_HORIZON = timedelta(days=8)


@dataclass(frozen=True)
class EventInLog:
    event: ConsentEvent
    #: The event's body, parsed (brand, purpose, action, occurred_at...).
    document: dict[str, Any]
    #: Leaf index in the tree: ``seq - 1``.
    index: int
    #: The first checkpoint whose tree includes the event; None until one is signed.
    first: LogCheckpoint | None
    #: The latest checkpoint, which the proof leads to.
    latest: LogCheckpoint | None
    #: The audit path to ``latest``'s root (None while no checkpoint includes the event).
    proof: list[bytes] | None
    #: The body hashes to the event's hash, the checkpoint's signature holds, and the
    #: proof leads from the event's leaf to its root.
    verified: bool

    @property
    def included(self) -> bool:
        return self.proof is not None


def event_in_log(
    session: Session, subject_key: str, seq: int, verifier_key: str
) -> EventInLog | None:
    """The consumer's event ``seq`` and its proof; None for an unknown or another's event."""
    event = session.scalar(
        select(ConsentEvent).where(ConsentEvent.seq == seq, ConsentEvent.subject_key == subject_key)
    )
    if event is None:
        return None
    index = seq - 1
    latest = latest_checkpoint(session)
    if latest is None or latest.size < seq:
        return EventInLog(event, ledger.document_of(event), index, None, latest, None, False)
    first = checkpoint_at_least(session, seq)
    proof = tree.inclusion_proof(tree.NodeStore(session), index, int(latest.size))
    return EventInLog(
        event,
        ledger.document_of(event),
        index,
        first,
        latest,
        proof,
        _verify(event, index, latest, proof, verifier_key),
    )


def _verify(
    event: ConsentEvent, index: int, checkpoint: LogCheckpoint, proof: list[bytes], vkey: str
) -> bool:
    digest = bytes(event.hash)
    if hashlib.sha256(event.body.encode()).digest() != digest:
        return False
    try:
        signed = note.parse_checkpoint(
            note.open_note(checkpoint.note, note.parse_verifier_key(vkey))
        )
    except note.NoteError:
        return False
    return merkle.verify_inclusion(index, signed.size, merkle.leaf_hash(digest), proof, signed.root)


def proof_document(found: EventInLog, log_origin: str, verifier_key: str) -> dict[str, Any]:
    """The downloadable proof: everything to check the event's inclusion offline."""
    assert found.latest is not None
    assert found.proof is not None
    return {
        "format": PROOF_FORMAT,
        "log_origin": log_origin,
        "seq": found.event.seq,
        "event_id": found.event.event_id,
        "event_hash": bytes(found.event.hash).hex(),
        "index": found.index,
        "size": int(found.latest.size),
        "hashes": [base64.b64encode(h).decode() for h in found.proof],
        "checkpoint": found.latest.note,
        "verifier_key": verifier_key,
    }


def minutes_to_next_checkpoint(schedule: str, now: datetime) -> int | None:
    """Within how many minutes the schedule ``VRM_SCHEDULE_CHECKPOINT`` signs the next
    checkpoint (its next run, plus a minute for the worker); None when it is off."""
    if schedule.strip() in {"", "off"}:
        return None
    try:
        runs = parse_cron(schedule)
    except ScheduleError:
        return None
    minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute - now <= SCHEDULE_HORIZON:
        if runs(minute):
            return math.ceil((minute - now).total_seconds() / 60) + 1
        minute += timedelta(minutes=1)
    return None
