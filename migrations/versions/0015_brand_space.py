"""brand space: API client secret rotation with a grace period, webhook secret overlap

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:20:00

``api_clients`` keep the digest of the secret replaced by a rotation and until when it
is still accepted; ``webhook_endpoints`` keep the replaced signing key and until when
deliveries are signed with both. ``webhook_pings`` logs the test requests sent from the
brand space, and ``brand_space_submissions`` the one-time keys of forms already acted on
(a form sent twice does its work once).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vrm_portal.db import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("secret_rotated_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("secret_rotated_at", UTCDateTime(), nullable=True))
    op.create_table(
        "webhook_pings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_pings_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_pings")),
    )
    with op.batch_alter_table("webhook_pings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_pings_endpoint_id"), ["endpoint_id"])
    op.create_table(
        "brand_space_submissions",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_brand_space_submissions")),
    )


def downgrade() -> None:
    op.drop_table("brand_space_submissions")
    with op.batch_alter_table("webhook_pings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_pings_endpoint_id"))
    op.drop_table("webhook_pings")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("secret_rotated_at")
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("secret_rotated_at")
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret_hash")
