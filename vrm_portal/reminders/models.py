"""The record of the daily attention digests: at most one per account and UTC day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class ReminderDigest(Base):
    """One attention digest sent (or being sent) to an account on ``sent_on``.

    The unique ``(account_id, sent_on)`` is what makes "one email per day at most" hold
    when two schedulers run, or a job runs twice.
    """

    __tablename__ = "reminder_digests"
    __table_args__ = (UniqueConstraint("account_id", "sent_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    #: The UTC day of the digest.
    sent_on: Mapped[date] = mapped_column(Date)
    #: How many consents it listed.
    items: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
