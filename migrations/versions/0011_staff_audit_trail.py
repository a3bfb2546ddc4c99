"""staff audit trail (append-only) and the brand-operator staff role

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:20:00

``staff_actions`` records what staff members do in the consoles; like
``consent_events`` it refuses UPDATE and DELETE (triggers). Accounts gain
``staff_brand_id``: a ``brand-operator`` is bound to one brand.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vrm_portal.db import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

APPEND_ONLY_MESSAGE = "staff_actions is append-only: UPDATE and DELETE are refused"

POSTGRESQL_TRIGGER = f"""
CREATE FUNCTION staff_actions_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER staff_actions_append_only
    BEFORE UPDATE OR DELETE ON staff_actions
    FOR EACH ROW EXECUTE FUNCTION staff_actions_append_only();
CREATE TRIGGER staff_actions_no_truncate
    BEFORE TRUNCATE ON staff_actions
    FOR EACH STATEMENT EXECUTE FUNCTION staff_actions_append_only();
"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER staff_actions_no_update BEFORE UPDATE ON staff_actions
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END""",
    f"""CREATE TRIGGER staff_actions_no_delete BEFORE DELETE ON staff_actions
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END""",
]

OPERATOR_CHECK = (
    "CASE WHEN staff_role = 'brand-operator' THEN staff_brand_id IS NOT NULL"
    " ELSE staff_brand_id IS NULL END"
)


def upgrade() -> None:
    op.create_table(
        "staff_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_email", sa.String(length=254), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=128), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_actions")),
    )
    op.create_index("ix_staff_actions_actor_id_id", "staff_actions", ["actor_id", "id"])
    op.create_index("ix_staff_actions_action_id", "staff_actions", ["action", "id"])
    op.create_index("ix_staff_actions_object", "staff_actions", ["object_type", "object_id", "id"])
    op.create_index("ix_staff_actions_occurred_at", "staff_actions", ["occurred_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_TRIGGER)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staff_brand_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_accounts_staff_brand_id"), ["staff_brand_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_accounts_staff_brand_id_brands"),
            "brands",
            ["staff_brand_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.drop_constraint(batch_op.f("ck_accounts_staff_role_known"), type_="check")
        batch_op.create_check_constraint(
            "staff_role_known", "staff_role IN ('dpo', 'admin', 'brand-operator')"
        )
        batch_op.create_check_constraint("staff_brand_only_for_operators", OPERATOR_CHECK)


def downgrade() -> None:
    op.execute("DELETE FROM accounts WHERE staff_role = 'brand-operator'")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("ck_accounts_staff_brand_only_for_operators"), type_="check"
        )
        batch_op.drop_constraint(batch_op.f("ck_accounts_staff_role_known"), type_="check")
        batch_op.create_check_constraint("staff_role_known", "staff_role IN ('dpo', 'admin')")
        batch_op.drop_constraint(
            batch_op.f("fk_accounts_staff_brand_id_brands"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_accounts_staff_brand_id"))
        batch_op.drop_column("staff_brand_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS staff_actions_no_truncate ON staff_actions")
        op.execute("DROP TRIGGER IF EXISTS staff_actions_append_only ON staff_actions")
        op.execute("DROP FUNCTION IF EXISTS staff_actions_append_only()")
    op.drop_table("staff_actions")
