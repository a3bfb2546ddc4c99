"""idempotency keys per API client: unique (client_pk, idempotency_key) on interactions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:20:00

Two clients of one brand used to share their keys (unique per brand): a second client
reusing a key got the first client's interaction replayed. Existing rows cannot clash
under the new constraint, since they were unique per brand already.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_interactions_brand_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_interactions_client_pk"), ["client_pk", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_interactions_client_pk", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_interactions_brand_id"), ["brand_id", "idempotency_key"]
        )
