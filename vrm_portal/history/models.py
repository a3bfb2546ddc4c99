"""Interactions pushed by brands, the access records of brands' reads, and the privacy
office's look-ups of consumer data."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class InteractionType(enum.StrEnum):
    PURCHASE = "purchase"
    SERVICE_VISIT = "service-visit"
    MESSAGE_SENT = "message-sent"
    SUPPORT_CASE = "support-case"
    EVENT_ATTENDED = "event-attended"
    TEST_DRIVE = "test-drive"


class Interaction(Base):
    """Something a brand did with or for the consumer, recorded through the API."""

    __tablename__ = "interactions"
    __table_args__ = (
        # Idempotency keys belong to the client that sent them.
        UniqueConstraint("client_pk", "idempotency_key"),
        Index("ix_interactions_account_id_occurred_at", "account_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Public identifier returned to the brand.
    interaction_id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    client_pk: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id", ondelete="SET NULL"))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    summary: Mapped[str] = mapped_column(String(200))
    #: The validated request body, as the brand sent it (the idempotent replay returns it).
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    #: SHA-256 of the canonical request body, to refuse a key reused for another body.
    request_hash: Mapped[str] = mapped_column(String(64))

    brand: Mapped[Brand] = relationship()


class AccessKind(enum.StrEnum):
    CONSUMER = "consumer"
    CONSUMERS = "consumers"
    CHANGES = "changes"


class AccessRecord(Base):
    """A brand's read through the API: one row per request, whatever its size.

    A page of consumers is the relationship ids ``first_id..last_id`` of that brand (keyset
    pagination reads a contiguous range), a page of the feed is ``first_id..last_id`` of its
    ``seq``. So a consumer finds every read that covered them with a range test, and bulk
    reads cost one row per page.
    """

    __tablename__ = "access_records"
    __table_args__ = (
        Index("ix_access_records_brand_id_kind_last_id", "brand_id", "kind", "last_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    client_pk: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(32))
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int]
    #: Field names the response carried (the union over the page).
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)


class LookupKind(enum.StrEnum):
    SEARCH = "search"
    EVENT = "event"
    EXPORT = "export"
    REQUEST = "request"


class StaffAccess(Base):
    """One console page (or export) that showed data about consumers to a staff member.

    The consumer is named by their ledger subject key (no foreign key, as in the ledger):
    the row is pseudonymous, outlives an erasure, and is what "Who read my data" shows.
    A search that is not about one consumer (a brand, a method) has no subject key.
    """

    __tablename__ = "staff_accesses"
    __table_args__ = (
        Index("ix_staff_accesses_subject_key_at", "subject_key", "at"),
        Index("ix_staff_accesses_staff_id_at", "staff_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The staff member, copied (not a foreign key): the record outlives their account.
    staff_id: Mapped[int | None]
    staff_email: Mapped[str] = mapped_column(String(254))
    subject_key: Mapped[str | None] = mapped_column(String(64))
    #: ``search``, ``event``, ``export`` or ``request`` (``LookupKind``).
    kind: Mapped[str] = mapped_column(String(16))
    #: What was looked at: the filters, the event's sequence number (no email address).
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The reason typed in (free text or a ticket reference).
    reason: Mapped[str] = mapped_column(Text, default="")
