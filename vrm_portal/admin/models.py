"""The administration console's own tables: text-version drafts under four-eyes review,
and staff invitations."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vrm_portal.clock import utcnow
from vrm_portal.consent.models import Purpose
from vrm_portal.db import Base


class DraftStatus(enum.StrEnum):
    #: Waiting for a second person's review.
    PENDING = "pending"
    #: Approved and published as the purpose's new version.
    PUBLISHED = "published"
    REJECTED = "rejected"
    #: The current text changed before the review: the draft no longer applies.
    SUPERSEDED = "superseded"


class TextDraft(Base):
    """A new text of a purpose, drafted by one staff member and published only once a
    different one (a DPO) approved it."""

    __tablename__ = "text_drafts"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'published', 'rejected', 'superseded')", name="status_known"
        ),
        Index("ix_text_drafts_purpose_id_status", "purpose_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("purposes.id", ondelete="CASCADE"))
    #: The purpose's current version when the draft was written (what the diff shows).
    base_version: Mapped[int]
    title_en: Mapped[str] = mapped_column(String(200))
    title_fr: Mapped[str] = mapped_column(String(200))
    text_en: Mapped[str] = mapped_column(Text)
    text_fr: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DraftStatus.PENDING.value)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None]
    review_comment: Mapped[str] = mapped_column(Text, default="")
    #: The version number the approval published.
    published_version: Mapped[int | None]

    purpose: Mapped[Purpose] = relationship()


class StaffInvitation(Base):
    """An emailed, single-use link with which a new staff member sets a password and
    enrols their second factor. Only the link's SHA-256 digest is stored."""

    __tablename__ = "staff_invitations"
    __table_args__ = (
        CheckConstraint("role IN ('dpo', 'admin', 'brand-operator')", name="role_known"),
        CheckConstraint(
            "CASE WHEN role = 'brand-operator' THEN brand_id IS NOT NULL ELSE brand_id IS NULL END",
            name="brand_only_for_operators",
        ),
        Index("ix_staff_invitations_email", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    #: SHA-256 hex of the secret in the link; None until the email job issues it.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    #: Set when the link is used (or the invitation withdrawn).
    used_at: Mapped[datetime | None]
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
