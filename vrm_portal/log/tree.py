"""The ledger's Merkle tree in the database: appended with each event, read for proofs.

``append_leaf`` runs inside the ledger append (the head row is locked): it computes the
leaf hash and the complete subtrees the leaf closes from the *frontier* (the roots of
the complete subtrees along the right edge, kept on the head row), and returns the new
nodes to insert. Nothing is rebuilt from the leaves. ``NodeStore`` answers any subtree
hash from the stored complete nodes, fetching all those a proof needs in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from vrm_portal.log import merkle
from vrm_portal.log.models import LogNode

HASH_SIZE = 32
_NODE = select(LogNode.hash).where(
    LogNode.level == bindparam("level"), LogNode.idx == bindparam("idx")
)


@dataclass(frozen=True)
class Node:
    level: int
    idx: int
    hash: bytes


def frontier_levels(size: int) -> list[int]:
    """The levels of the right-edge complete subtrees of a tree of ``size`` leaves,
    highest first (the set bits of ``size``)."""
    return [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]


def decode_frontier(blob: bytes | None, size: int) -> list[bytes]:
    data = bytes(blob or b"")
    hashes = [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
    if len(hashes) != len(frontier_levels(size)):
        raise ValueError(f"the stored frontier does not fit a tree of {size} leaves")
    return hashes


def encode_frontier(frontier: Sequence[bytes]) -> bytes:
    return b"".join(frontier)


def append_leaf(frontier: list[bytes], size: int, leaf_input: bytes) -> list[Node]:
    """Add leaf ``size`` (0-based) to a tree of ``size`` leaves whose right edge is
    ``frontier`` (updated in place). Returns the complete nodes the leaf creates."""
    digest = merkle.leaf_hash(leaf_input)
    nodes = [Node(0, size, digest)]
    level, idx = 0, size
    # Each trailing one bit of ``size`` is a complete subtree of that level waiting for
    # its right half: the new node completes it.
    while size >> level & 1:
        left = frontier.pop()
        digest = merkle.node_hash(left, digest)
        level += 1
        idx >>= 1
        nodes.append(Node(level, idx, digest))
    frontier.append(digest)
    return nodes


def root_of_frontier(frontier: Sequence[bytes]) -> bytes:
    """The tree hash from its right edge (the RFC's tree is the fold from the right)."""
    if not frontier:
        return merkle.EMPTY_ROOT
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = merkle.node_hash(left, root)
    return root


def node_key(start: int, end: int) -> tuple[int, int] | None:
    """The stored node holding exactly the leaves ``[start, end)``, if there is one."""
    width = end - start
    if width & (width - 1) or start % width:
        return None
    level = width.bit_length() - 1
    return level, start >> level


class NodeStore:
    """Subtree hashes from ``log_nodes``. ``prefetch`` the ranges a computation needs
    (``needed`` finds them with a dry run), then call ``subtree`` freely."""

    def __init__(self, bind: Session | Connection) -> None:
        # Core, not the ORM: each lookup is a plain primary-key read.
        self.bind = bind.connection() if isinstance(bind, Session) else bind
        self.cache: dict[tuple[int, int], bytes] = {}

    def fetch(self, keys: Iterable[tuple[int, int]]) -> None:
        missing = sorted(set(keys) - self.cache.keys())
        # One primary-key lookup per node, through one statement compiled once: a proof
        # needs about log2(n) of them, and a statement whose shape varied with the proof
        # would be built and compiled again for each (slower than the lookups).
        for level, idx in missing:
            digest = self.bind.execute(_NODE, {"level": level, "idx": idx}).scalar()
            if digest is not None:
                self.cache[(level, idx)] = bytes(digest)
        absent = [key for key in missing if key not in self.cache]
        if absent:
            raise LookupError(f"the tree has no node {absent[0]}: it is incomplete")

    def subtree(self, start: int, end: int) -> bytes:
        key = node_key(start, end)
        if key is not None:
            if key not in self.cache:
                self.fetch([key])
            return self.cache[key]
        k = merkle.split_point(end - start)
        return merkle.node_hash(self.subtree(start, start + k), self.subtree(start + k, end))


def needed_nodes(ranges: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The stored nodes that the subtree hashes of ``ranges`` are made of."""
    keys: set[tuple[int, int]] = set()
    pending = list(ranges)
    while pending:
        start, end = pending.pop()
        key = node_key(start, end)
        if key is not None:
            keys.add(key)
            continue
        k = merkle.split_point(end - start)
        pending += [(start, start + k), (start + k, end)]
    return keys


def _recorder(ranges: list[tuple[int, int]]) -> merkle.SubtreeHash:
    """A dry-run ``SubtreeHash`` that notes which ranges a proof asks for."""

    def record(start: int, end: int) -> bytes:
        ranges.append((start, end))
        return b""

    return record


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves, in one query."""
    ranges: list[tuple[int, int]] = []
    merkle.inclusion_proof(index, size, _recorder(ranges))
    store.fetch(needed_nodes(ranges))
    return merkle.inclusion_proof(index, size, store.subtree)


def consistency_proof(store: NodeStore, old_size: int, new_size: int) -> list[bytes]:
    ranges: list[tuple[int, int]] = []
    merkle.consistency_proof(old_size, new_size, _recorder(ranges))
    store.fetch(needed_nodes(ranges))
    return merkle.consistency_proof(old_size, new_size, store.subtree)


def root(store: NodeStore, size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    store.fetch(needed_nodes([(0, size)]))
    return store.subtree(0, size)


def leaf_hash_at(store: NodeStore, index: int) -> bytes:
    store.fetch([(0, index)])
    return store.cache[(0, index)]
