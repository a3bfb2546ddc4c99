"""Checkpoints of the public log, its proofs, and the check of the whole log.

- ``sign_checkpoint`` (the scheduled job and ``vrm checkpoint``): when the ledger has
  grown, compute the tree hash at the head, prove it consistent with the previous
  checkpoint (refusing, with ``LogInconsistent``, when it is not), sign the C2SP note,
  store it, and send it to every brand as a ``log.checkpoint`` feed entry: the brands
  are the witnesses that keep the operator from rewriting history unseen.
- Proofs are only served up to the latest checkpoint's size: what a proof shows is then
  always checkable against a head that was published.
- ``verify_log`` streams the ledger and checks every event's hash, its chain link, its
  leaf in the tree, and every checkpoint's root: it names the first bad index.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from vrm_portal.brands import feed
from vrm_portal.brands.models import Brand, ChangeKind
from vrm_portal.clock import rfc3339
from vrm_portal.consent.models import ConsentEvent, LedgerHead
from vrm_portal.log import merkle, note, tree
from vrm_portal.log.models import LogCheckpoint, LogNode
from vrm_portal.log.signing import LogSigner

GENESIS_HASH = bytes(32)


class LogInconsistent(Exception):
    """The tree no longer extends the last checkpoint: the log was rewritten."""


class NoCheckpoint(LookupError):
    """No checkpoint has been signed yet."""


def latest_checkpoint(session: Session | Connection) -> LogCheckpoint | None:
    row = session.execute(
        select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(1)
    ).scalar_one_or_none()
    return row


def _head(session: Session) -> tuple[int, list[bytes]]:
    row = session.execute(select(LedgerHead.seq, LedgerHead.frontier)).one_or_none()
    if row is None:
        return 0, []
    return int(row.seq), tree.decode_frontier(row.frontier, int(row.seq))


@dataclass(frozen=True)
class Signed:
    checkpoint: LogCheckpoint
    brands_told: int


def sign_checkpoint(session: Session, signer: LogSigner, now: datetime) -> Signed | None:
    """Sign a checkpoint of the tree as it stands, if it grew since the last one."""
    size, frontier = _head(session)
    previous = latest_checkpoint(session)
    if size == 0 or (previous is not None and previous.size >= size):
        return None
    new_root = tree.root_of_frontier(frontier)
    store = tree.NodeStore(session)
    stored_root = tree.root(store, size)
    if stored_root != new_root:
        raise LogInconsistent(f"the stored tree of size {size} does not match its right edge")
    if previous is not None:
        proof = tree.consistency_proof(store, previous.size, size)
        if not merkle.verify_consistency(
            previous.size, size, bytes(previous.root), new_root, proof
        ):
            raise LogInconsistent(
                f"the tree of size {size} does not extend the checkpoint of size "
                f"{previous.size}: the log was rewritten"
            )
    text = note.Checkpoint(
        signer.origin, size, new_root, (f"vrm-time {rfc3339(now.replace(microsecond=0))}",)
    ).text()
    checkpoint = LogCheckpoint(
        size=size, root=new_root, note=signer.sign(text), key_name=signer.origin, created_at=now
    )
    session.add(checkpoint)
    session.flush()
    brand_ids = session.scalars(select(Brand.id).order_by(Brand.id)).all()
    for brand_id in brand_ids:  # ascending: the project's lock order
        feed.append_change(
            session,
            brand_id,
            ChangeKind.LOG_CHECKPOINT,
            "",
            now,
            {"size": size, "root": _b64(new_root), "checkpoint": checkpoint.note},
        )
    return Signed(checkpoint, len(brand_ids))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- proofs ---------------------------------------------------------------------------


class ProofRequestError(ValueError):
    """A proof asked for sizes or an index outside the published log; says which."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def published_size(session: Session | Connection) -> int:
    size = session.execute(select(func.max(LogCheckpoint.size))).scalar()
    if size is None:
        raise NoCheckpoint("no checkpoint has been signed yet")
    return int(size)


def inclusion(session: Session | Connection, index: int, size: int) -> list[bytes]:
    limit = published_size(session)
    if not 1 <= size <= limit:
        raise ProofRequestError(
            "size", f"size must be between 1 and {limit}, the latest checkpoint's size"
        )
    if not 0 <= index < size:
        raise ProofRequestError("index", f"index must be between 0 and {size - 1} (size - 1)")
    return tree.inclusion_proof(tree.NodeStore(session), index, size)


def consistency(session: Session | Connection, old: int, new: int) -> list[bytes]:
    limit = published_size(session)
    if not 1 <= new <= limit:
        raise ProofRequestError(
            "to", f"to must be between 1 and {limit}, the latest checkpoint's size"
        )
    if not 1 <= old <= new:
        raise ProofRequestError("from", f"from must be between 1 and {new} (to)")
    return tree.consistency_proof(tree.NodeStore(session), old, new)


def checkpoints_after(
    session: Session | Connection, after: int, limit: int
) -> Sequence[LogCheckpoint]:
    return (
        session.execute(
            select(LogCheckpoint)
            .where(LogCheckpoint.size > after)
            .order_by(LogCheckpoint.size)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def checkpoint_at_least(session: Session | Connection, size: int) -> LogCheckpoint | None:
    """The first checkpoint that includes leaf ``size - 1``."""
    return session.execute(
        select(LogCheckpoint)
        .where(LogCheckpoint.size >= size)
        .order_by(LogCheckpoint.size)
        .limit(1)
    ).scalar_one_or_none()


# ---- the whole log ----------------------------------------------------------------------


@dataclass(frozen=True)
class LogCheck:
    ok: bool
    checked: int
    #: The first leaf (0-based) found wrong, and why.
    first_bad_index: int | None = None
    problem: str | None = None


def verify_log(connection: Connection, *, batch: int = 5000) -> LogCheck:
    """Re-derive every leaf from the events (body hash, chain link) and compare with the
    stored tree; recompute the root at every checkpoint's size and compare with it."""
    checkpoints = {
        int(size): bytes(root)
        for size, root in connection.execute(select(LogCheckpoint.size, LogCheckpoint.root))
    }
    frontier: list[bytes] = []
    previous = GENESIS_HASH
    size = last_good = 0
    streamed = {"stream_results": True, "yield_per": batch}
    events = connection.execute(
        select(ConsentEvent.seq, ConsentEvent.body, ConsentEvent.hash)
        .order_by(ConsentEvent.seq)
        .execution_options(**streamed)
    )
    leaves = connection.execute(
        select(LogNode.idx, LogNode.hash)
        .where(LogNode.level == 0)
        .order_by(LogNode.idx)
        .execution_options(**streamed)
    )
    try:
        stored_leaves = iter(leaves)
        for seq, body, digest in events:
            index = size
            if seq != index + 1:
                return LogCheck(False, index, index, f"event seq {seq} where {index + 1} belongs")
            if hashlib.sha256(body.encode()).digest() != bytes(digest):
                return LogCheck(False, index, index, "the event's body does not hash to its hash")
            if json.loads(body).get("prev_hash") != previous.hex():
                return LogCheck(False, index, index, "the event does not link to the one before")
            stored = next(stored_leaves, None)
            if stored is None or int(stored[0]) != index:
                return LogCheck(False, index, index, "the tree has no leaf for this event")
            if bytes(stored[1]) != merkle.leaf_hash(bytes(digest)):
                return LogCheck(False, index, index, "the tree's leaf is not this event's hash")
            tree.append_leaf(frontier, index, bytes(digest))
            size += 1
            previous = bytes(digest)
            expected = checkpoints.get(size)
            if expected is not None:
                if tree.root_of_frontier(frontier) != expected:
                    return LogCheck(
                        False,
                        size,
                        last_good,
                        f"the tree of size {size} is not the one its checkpoint signed: a leaf "
                        f"from index {last_good} to {size - 1} was rewritten, with its hashes",
                    )
                last_good = size
    finally:
        events.close()
        leaves.close()
    beyond = [s for s in checkpoints if s > size]
    if beyond:
        return LogCheck(False, size, size, f"a checkpoint covers {max(beyond)} events")
    return LogCheck(True, size)
