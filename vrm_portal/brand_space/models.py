"""Form submissions already handled, so that a form sent twice does its work once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class FormSubmission(Base):
    """The one-time key of a brand-space form that was acted on, and what it did.

    Each form page carries a fresh random key; the action inserts it in its own
    transaction, so a second submit of the same page (a double click, a reload) finds the
    key taken and says what the first one did instead of doing it again.
    """

    __tablename__ = "brand_space_submissions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: What the first submit did, e.g. ``api_client.created``.
    action: Mapped[str] = mapped_column(String(48))
    #: The object it acted on (a client id, an endpoint number), to link back to it.
    object_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
