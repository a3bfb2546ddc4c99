"""Each brand's topic catalogue, declared interests, and stated intents."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class IntentCategory(enum.StrEnum):
    BUY_VEHICLE = "buy-vehicle"
    REPLACE_VEHICLE = "replace-vehicle"
    VEHICLE_SERVICE = "vehicle-service"
    GIFT = "gift"
    CELEBRATION = "celebration"
    WINE_CELLAR = "wine-cellar"
    OTHER = "other"


class Topic(Base):
    """A subject a brand can tell consumers about, e.g. "electric vehicles"."""

    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("brand_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    label_en: Mapped[str] = mapped_column(String(120))
    label_fr: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(default=0)
    #: Retired topics stay attached to past choices but are no longer offered.
    retired: Mapped[bool] = mapped_column(default=False)

    brand: Mapped[Brand] = relationship()

    def label(self, locale: str) -> str:
        return self.label_fr if locale == "fr" else self.label_en


class DeclaredInterest(Base):
    __tablename__ = "declared_interests"
    __table_args__ = (UniqueConstraint("account_id", "topic_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    topic: Mapped[Topic] = relationship()


class Intent(Base):
    """Something the consumer plans ("replace my car within 6 months"), shown to the brands
    they chose, until ``ends_on``."""

    __tablename__ = "intents"
    __table_args__ = (
        CheckConstraint("horizon_months BETWEEN 1 AND 60", name="horizon_range"),
        CheckConstraint(
            "budget_min IS NULL OR budget_max IS NULL OR budget_min <= budget_max",
            name="budget_ordered",
        ),
        Index("ix_intents_account_id_ends_on", "account_id", "ends_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(32))
    #: The consumer's own words (optional), e.g. "a family estate car".
    summary: Mapped[str] = mapped_column(String(200), default="")
    horizon_months: Mapped[int]
    budget_min: Mapped[int | None]
    budget_max: Mapped[int | None]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    #: After this day the intent lapses and no brand sees it.
    ends_on: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]

    brands: Mapped[list[IntentBrand]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class IntentBrand(Base):
    """A brand the consumer allowed to see an intent."""

    __tablename__ = "intent_brands"
    __table_args__ = (UniqueConstraint("intent_id", "brand_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    intent_id: Mapped[int] = mapped_column(ForeignKey("intents.id", ondelete="CASCADE"))
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)

    brand: Mapped[Brand] = relationship()
