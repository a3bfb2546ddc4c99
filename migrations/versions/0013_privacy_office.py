"""privacy office console: staff access rows, verification runs, data-request queue

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 13:20:00

``staff_accesses`` records each console page that showed consumer data (who, when,
what, why); ``verification_runs`` keeps every full verification of the ledger with its
progress and outcome. ``data_requests`` learns where a request came from (the portal,
or the post / an email recorded by the privacy office). The consent ledger gets the
indexes of the console's keyset search: by time, by brand and purpose, by action, and a
partial index per collection method (a ``LIKE`` on the canonical body: same SQL on
SQLite and PostgreSQL, and the append path is unchanged).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vrm_portal.db import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: Frozen copy of ``privacy_office.models.INDEXED_METHODS``.
METHODS = (
    "portal",
    "email-confirmation",
    "gpc-signal",
    "expiry",
    "import",
    "api",
    "staff",
    "erasure",
    "purpose-retired",
)


def _method_index(method: str) -> str:
    return f"ix_consent_events_method_{method.replace('-', '_')}"


def _method_predicate(method: str) -> str:
    return f'body LIKE \'%"method":"{method}"%\''


def upgrade() -> None:
    op.create_table(
        "staff_accesses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("staff_email", sa.String(length=254), nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_accesses")),
    )
    op.create_index("ix_staff_accesses_subject_key_at", "staff_accesses", ["subject_key", "at"])
    op.create_index("ix_staff_accesses_staff_id_at", "staff_accesses", ["staff_id", "at"])

    op.create_table(
        "verification_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("started_by_email", sa.String(length=254), nullable=True),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("checked", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("progress_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("first_bad_seq", sa.BigInteger(), nullable=True),
        sa.Column("first_bad_event_id", sa.String(length=36), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_runs")),
    )
    op.create_index("ix_verification_runs_started_at", "verification_runs", ["started_at"])

    with op.batch_alter_table("data_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("received_via", sa.String(length=16), server_default="portal", nullable=False)
        )
        batch_op.add_column(sa.Column("recorded_by_email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("recorded_reason", sa.Text(), nullable=True))
        batch_op.create_index(
            "ix_data_requests_kind_status_requested_at", ["kind", "status", "requested_at"]
        )

    # Indexes only: no batch mode (it would copy the append-only ledger table).
    op.create_index("ix_consent_events_occurred_at_seq", "consent_events", ["occurred_at", "seq"])
    op.create_index(
        "ix_consent_events_brand_purpose_time",
        "consent_events",
        ["brand_slug", "purpose_key", "occurred_at", "seq"],
    )
    op.create_index(
        "ix_consent_events_action_time", "consent_events", ["action", "occurred_at", "seq"]
    )
    for method in METHODS:
        predicate = sa.text(_method_predicate(method))
        op.create_index(
            _method_index(method),
            "consent_events",
            ["occurred_at", "seq"],
            sqlite_where=predicate,
            postgresql_where=predicate,
        )


def downgrade() -> None:
    for method in METHODS:
        op.drop_index(_method_index(method), table_name="consent_events")
    op.drop_index("ix_consent_events_action_time", table_name="consent_events")
    op.drop_index("ix_consent_events_brand_purpose_time", table_name="consent_events")
    op.drop_index("ix_consent_events_occurred_at_seq", table_name="consent_events")
    with op.batch_alter_table("data_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_data_requests_kind_status_requested_at")
        batch_op.drop_column("recorded_reason")
        batch_op.drop_column("recorded_by_email")
        batch_op.drop_column("received_via")
    op.drop_index("ix_verification_runs_started_at", table_name="verification_runs")
    op.drop_table("verification_runs")
    op.drop_index("ix_staff_accesses_staff_id_at", table_name="staff_accesses")
    op.drop_index("ix_staff_accesses_subject_key_at", table_name="staff_accesses")
    op.drop_table("staff_accesses")
