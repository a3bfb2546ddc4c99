"""privacy office statistics: daily counts of the consent ledger, folded incrementally

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 14:40:00

``consent_daily_counts`` holds, per UTC day, brand, purpose, action and collection
method, how many events the ledger has; ``statistics_rollup`` (one row) says up to which
``seq`` they are folded. The row starts at 0: the scheduled rollup (or the first view of
the statistics page) folds the existing ledger in.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from vrm_portal.db import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_daily_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("brand_slug", sa.String(length=64), nullable=False),
        sa.Column("purpose_key", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "brand_slug",
            "purpose_key",
            "action",
            "method",
            name=op.f("pk_consent_daily_counts"),
        ),
    )
    op.create_index(
        "ix_consent_daily_counts_day_action_method",
        "consent_daily_counts",
        ["day", "action", "method", "count"],
    )
    op.create_index(
        "ix_consent_daily_counts_brand_day", "consent_daily_counts", ["brand_slug", "day"]
    )
    rollup = op.create_table(
        "statistics_rollup",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statistics_rollup")),
    )
    op.bulk_insert(rollup, [{"id": 1, "last_seq": 0, "updated_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("statistics_rollup")
    op.drop_index("ix_consent_daily_counts_brand_day", table_name="consent_daily_counts")
    op.drop_index("ix_consent_daily_counts_day_action_method", table_name="consent_daily_counts")
    op.drop_table("consent_daily_counts")
