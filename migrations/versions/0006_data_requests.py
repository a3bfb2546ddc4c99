"""data requests (export, erasure); indexes for "my data" (timeline, who read my data)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vrm_portal.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ONE_SCHEDULED = sa.text("kind = 'erasure' AND status = 'scheduled'")


def upgrade() -> None:
    op.create_table(
        "data_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=True),
        sa.Column("requested_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "format IS NULL OR format IN ('json', 'csv', 'html')",
            name=op.f("ck_data_requests_format_known"),
        ),
        sa.CheckConstraint(
            "kind IN ('export', 'erasure')", name=op.f("ck_data_requests_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'completed', 'cancelled')",
            name=op.f("ck_data_requests_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_data_requests_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_requests")),
        sa.UniqueConstraint("reference", name=op.f("uq_data_requests_reference")),
    )
    with op.batch_alter_table("data_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_data_requests_account_id_requested_at",
            ["account_id", "requested_at", "id"],
            unique=False,
        )
        batch_op.create_index("ix_data_requests_status_due_at", ["status", "due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_data_requests_subject_key"), ["subject_key"], unique=False
        )
        batch_op.create_index(
            "uq_data_requests_one_scheduled_erasure",
            ["account_id"],
            unique=True,
            sqlite_where=_ONE_SCHEDULED,
            postgresql_where=_ONE_SCHEDULED,
        )
    with op.batch_alter_table("brand_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_brand_changes_pairwise_id_seq", ["pairwise_id", "seq"], unique=False
        )
    # "My data": the consumer's timeline, newest first, from each source.
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_events_subject_key_occurred_at",
            ["subject_key", "occurred_at", "seq"],
            unique=False,
        )
    with op.batch_alter_table("account_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_account_events_account_id_created_at",
            ["account_id", "created_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("account_events", schema=None) as batch_op:
        batch_op.drop_index("ix_account_events_account_id_created_at")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_subject_key_occurred_at")
    with op.batch_alter_table("brand_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_brand_changes_pairwise_id_seq")
    with op.batch_alter_table("data_requests", schema=None) as batch_op:
        batch_op.drop_index("uq_data_requests_one_scheduled_erasure")
        batch_op.drop_index(batch_op.f("ix_data_requests_subject_key"))
        batch_op.drop_index("ix_data_requests_status_due_at")
        batch_op.drop_index("ix_data_requests_account_id_requested_at")
    op.drop_table("data_requests")
