"""transparency log: the Merkle tree's nodes, its frontier on the ledger head, checkpoints

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:10:00

The tree is built here for the events already in the ledger (leaf ``seq - 1`` is the
event's hash), streaming them in ``seq`` order, so an existing ledger becomes a log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vrm_portal.db import UTCDateTime
from vrm_portal.log import tree

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_log_nodes")),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("key_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_log_checkpoints")),
    )
    with op.batch_alter_table("consent_ledger_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frontier", sa.LargeBinary(), nullable=True))
    _build_tree()


def _build_tree() -> None:
    """The tree of the events already recorded (none in a new database)."""
    connection = op.get_bind()
    nodes = sa.table(
        "log_nodes",
        sa.column("level", sa.SmallInteger()),
        sa.column("idx", sa.BigInteger()),
        sa.column("hash", sa.LargeBinary()),
    )
    frontier: list[bytes] = []
    size = 0
    pending: list[dict[str, object]] = []
    rows = connection.execute(
        sa.text("SELECT seq, hash FROM consent_events ORDER BY seq").execution_options(
            stream_results=True, yield_per=BATCH
        )
    )
    for seq, digest in rows:
        if seq != size + 1:
            raise RuntimeError(f"the ledger has a gap before seq {seq}: verify it first")
        for node in tree.append_leaf(frontier, size, bytes(digest)):
            pending.append({"level": node.level, "idx": node.idx, "hash": node.hash})
        size += 1
        if len(pending) >= BATCH:
            connection.execute(nodes.insert(), pending)
            pending = []
    if pending:
        connection.execute(nodes.insert(), pending)
    if size:
        connection.execute(
            sa.text("UPDATE consent_ledger_head SET frontier = :frontier WHERE id = 1"),
            {"frontier": tree.encode_frontier(frontier)},
        )


def downgrade() -> None:
    with op.batch_alter_table("consent_ledger_head", schema=None) as batch_op:
        batch_op.drop_column("frontier")
    op.drop_table("log_checkpoints")
    op.drop_table("log_nodes")
