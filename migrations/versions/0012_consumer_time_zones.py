"""consumer time zones: accounts.time_zone

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:20:00

The IANA zone a consumer reads times in (``Europe/Paris``); null until they choose one
or their browser reports one, which shows times in UTC as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
