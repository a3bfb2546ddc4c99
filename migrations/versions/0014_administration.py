"""administration console: brand operators, text-version drafts, staff invitations

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:20:00

``text_drafts`` holds new purpose texts waiting for a second person's review;
``staff_invitations`` the single-use links that bring in new staff. Accounts gain
``disabled_at`` (a disabled staff account cannot sign in) and purposes ``retired_at``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vrm_portal.db import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_at", UTCDateTime(), nullable=True))

    op.create_table(
        "text_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose_id", sa.Integer(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("title_fr", sa.String(length=200), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("text_fr", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'published', 'rejected', 'superseded')",
            name=op.f("ck_text_drafts_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["accounts.id"],
            name=op.f("fk_text_drafts_author_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["purpose_id"],
            ["purposes.id"],
            name=op.f("fk_text_drafts_purpose_id_purposes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["accounts.id"],
            name=op.f("fk_text_drafts_reviewer_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_drafts")),
    )
    op.create_index("ix_text_drafts_purpose_id_status", "text_drafts", ["purpose_id", "status"])

    op.create_table(
        "staff_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "role IN ('dpo', 'admin', 'brand-operator')",
            name=op.f("ck_staff_invitations_role_known"),
        ),
        sa.CheckConstraint(
            "CASE WHEN role = 'brand-operator' THEN brand_id IS NOT NULL ELSE brand_id IS NULL END",
            name=op.f("ck_staff_invitations_brand_only_for_operators"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_staff_invitations_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_staff_invitations_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["accounts.id"],
            name=op.f("fk_staff_invitations_invited_by_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_invitations_token_hash")),
    )
    op.create_index("ix_staff_invitations_email", "staff_invitations", ["email"])


def downgrade() -> None:
    op.drop_index("ix_staff_invitations_email", table_name="staff_invitations")
    op.drop_table("staff_invitations")
    op.drop_index("ix_text_drafts_purpose_id_status", table_name="text_drafts")
    op.drop_table("text_drafts")
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.drop_column("retired_at")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
