"""The Merkle tree over the ledger, stored as its complete nodes, and the checkpoints.

Leaf ``i`` is the ledger event with ``seq = i + 1``; its input is that event's SHA-256
hash. ``log_nodes`` holds every *complete* subtree: at ``level`` L, node ``idx`` covers
the leaves ``[idx * 2**L, (idx + 1) * 2**L)``. Appending leaf ``i`` adds its leaf hash
and, for each trailing one bit of ``i``, the parent it completes: two rows per event on
average. The right edge (the roots of the complete subtrees along it: the *frontier*)
is kept on the ledger head row, so an append reads nothing more. Any subtree hash, and
so any root or proof, is a handful of node rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class LogNode(Base):
    """A complete subtree's hash. Written once, never changed."""

    __tablename__ = "log_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogCheckpoint(Base):
    """A signed tree head: the C2SP checkpoint note for ``size`` leaves."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The whole signed note, as served at /log/checkpoint.
    note: Mapped[str] = mapped_column(Text)
    #: The signing key's name (the verifier key says which key).
    key_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
