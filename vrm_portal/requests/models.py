"""Data requests: what the consumer asked for (an export, an erasure), when, and its outcome."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class RequestKind(enum.StrEnum):
    EXPORT = "export"
    ERASURE = "erasure"


class RequestStatus(enum.StrEnum):
    #: An erasure waiting for the end of its grace period (``due_at``).
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    #: An erasure the consumer called off during the grace period.
    CANCELLED = "cancelled"


class ReceivedVia(enum.StrEnum):
    PORTAL = "portal"
    #: Received outside the portal and recorded by the privacy office.
    POST = "post"
    EMAIL = "email"


class ExportFormat(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"


def new_reference() -> str:
    return str(uuid.uuid4())


def _values(enum_class: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum_class)


class DataRequest(Base):
    """One data-subject request, kept after an erasure for the privacy office.

    Once the account is erased ``account_id`` is NULL and only the pseudonymous
    ``subject_key`` (the ledger's key) ties the request to the consent history: the row
    holds no email, no name, nothing that identifies the person directly.
    """

    __tablename__ = "data_requests"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_values(RequestKind)})", name="kind_known"),
        CheckConstraint(f"status IN ({_values(RequestStatus)})", name="status_known"),
        CheckConstraint(
            f"format IS NULL OR format IN ({_values(ExportFormat)})", name="format_known"
        ),
        # The consumer's requests and timeline, newest first.
        Index("ix_data_requests_account_id_requested_at", "account_id", "requested_at", "id"),
        # The erasure worker's scan: WHERE status = 'scheduled' AND due_at <= now.
        Index("ix_data_requests_status_due_at", "status", "due_at"),
        # The privacy office's queue, oldest first, by type and status.
        Index("ix_data_requests_kind_status_requested_at", "kind", "status", "requested_at"),
        # At most one pending erasure per account, whatever the race.
        Index(
            "uq_data_requests_one_scheduled_erasure",
            "account_id",
            unique=True,
            sqlite_where=text("kind = 'erasure' AND status = 'scheduled'"),
            postgresql_where=text("kind = 'erasure' AND status = 'scheduled'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Public identifier shown to the consumer and quoted to the privacy office.
    reference: Mapped[str] = mapped_column(String(36), unique=True, default=new_reference)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    subject_key: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    #: The export's format; None for an erasure.
    format: Mapped[str | None] = mapped_column(String(8))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When a scheduled erasure runs (the end of the grace period).
    due_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    #: Outcome without personal data: rows erased per table, brands told, failed attempts.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: ``portal``, or ``post`` / ``email`` for a request the privacy office recorded.
    received_via: Mapped[str] = mapped_column(
        String(16), default=ReceivedVia.PORTAL.value, server_default=ReceivedVia.PORTAL.value
    )
    #: The privacy officer who recorded a request received outside the portal, and why.
    recorded_by_email: Mapped[str | None] = mapped_column(String(254))
    recorded_reason: Mapped[str | None] = mapped_column(Text)
