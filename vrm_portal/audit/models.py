"""The staff audit trail's table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class StaffAction(Base):
    """One thing a staff member did. Rows are never updated nor deleted (triggers).

    The actor is copied (id, email, role) rather than referenced by a foreign key: the
    trail must outlive the account, and a foreign key's ``ON DELETE`` would have to
    update rows. Objects are named by type and id as text for the same reason.
    """

    __tablename__ = "staff_actions"
    __table_args__ = (
        Index("ix_staff_actions_actor_id_id", "actor_id", "id"),
        Index("ix_staff_actions_action_id", "action", "id"),
        Index("ix_staff_actions_object", "object_type", "object_id", "id"),
        Index("ix_staff_actions_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None]
    actor_email: Mapped[str] = mapped_column(String(254))
    actor_role: Mapped[str] = mapped_column(String(16))
    #: Dotted name of the action, e.g. ``text_version.approved`` or ``staff.invited``.
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(128), default="")
    #: Values before and after the change (secrets replaced by "[redacted]").
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The reason typed in by the staff member, when the action asks for one.
    reason: Mapped[str] = mapped_column(Text, default="")
