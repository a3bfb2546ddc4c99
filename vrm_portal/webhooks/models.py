"""Webhook endpoints, the outbox of deliveries and the log of each attempt."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class WebhookEndpoint(Base):
    """An HTTPS URL of a brand that receives its feed changes, signed with ``secret``."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    #: HMAC-SHA256 key shared with the brand (shown once when the endpoint is created).
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    #: The key replaced by the last rotation: deliveries are signed with both keys until
    #: ``previous_secret_expires_at`` (the overlap), so the brand can switch at leisure.
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None]
    secret_rotated_at: Mapped[datetime | None]

    brand: Mapped[Brand] = relationship()

    def signing_secrets(self, now: datetime) -> list[str]:
        """The keys a delivery signed at ``now`` carries a signature for, newest first."""
        return signing_secrets(
            self.secret, self.previous_secret, self.previous_secret_expires_at, now
        )


def signing_secrets(
    secret: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """``[secret]``, or ``[secret, previous]`` while a rotation's overlap lasts."""
    if previous and previous_until is not None and previous_until > now:
        return [secret, previous]
    return [secret]


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Gave up after the last retry; ``vrm webhooks-retry`` puts it back in the queue.
    FAILED = "failed"


class WebhookDelivery(Base):
    """The outbox: one row per (endpoint, feed change), written with the change itself."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    change_seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    endpoint: Mapped[WebhookEndpoint] = relationship()


class WebhookAttempt(Base):
    """The delivery log: every attempt, its HTTP status or error, and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(default=0)


class WebhookPing(Base):
    """A test request sent to an endpoint from the brand space, and the answer it got."""

    __tablename__ = "webhook_pings"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(default=0)
