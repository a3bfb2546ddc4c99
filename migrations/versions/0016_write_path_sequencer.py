"""write path: events integrated by a sequencer

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vrm_portal.db import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_event_intake",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("receipt_id", sa.String(length=36), nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=True),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("pairwise_id", sa.String(length=36), nullable=False),
        sa.Column("feed_data", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_event_intake")),
        sa.UniqueConstraint("event_id", name=op.f("uq_consent_event_intake_event_id")),
    )
    with op.batch_alter_table("consent_receipts", schema=None) as batch_op:
        batch_op.alter_column("event_seq", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    # Integrate what waits first (``vrm sequence-ledger``): receipts without a position
    # cannot go back to a NOT NULL column.
    with op.batch_alter_table("consent_receipts", schema=None) as batch_op:
        batch_op.alter_column("event_seq", existing_type=sa.BigInteger(), nullable=False)
    op.drop_table("consent_event_intake")
