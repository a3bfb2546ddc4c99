"""Brands and the consumer-to-brand relationship (with its pairwise identifier)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vrm_portal.clock import utcnow
from vrm_portal.db import Base


def new_pairwise_id() -> str:
    return str(uuid.uuid4())


class Brand(Base):
    """A brand of the group: the data controller named on consent receipts."""

    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable public key of the brand (URLs, the ledger, the API); never changes.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description_en: Mapped[str] = mapped_column(String(500), default="")
    description_fr: Mapped[str] = mapped_column(String(500), default="")
    #: Legal name of the controller, its postal address and privacy contact.
    controller_name: Mapped[str] = mapped_column(String(200))
    controller_address: Mapped[str] = mapped_column(String(300), default="")
    controller_email: Mapped[str] = mapped_column(String(254))
    policy_url: Mapped[str] = mapped_column(String(500))
    #: ISO 3166 country code of the governing jurisdiction (receipts).
    jurisdiction: Mapped[str] = mapped_column(String(8), default="FR")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BrandRelationship(Base):
    """A consumer known to a brand, and the pairwise id under which the brand knows them.

    Created by the first consent event for that brand. The pairwise id differs per brand
    (like an OpenID Connect pairwise ``sub``) so brands cannot join their data.
    """

    __tablename__ = "brand_relationships"
    __table_args__ = (UniqueConstraint("account_id", "brand_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    pairwise_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_pairwise_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    brand: Mapped[Brand] = relationship()
