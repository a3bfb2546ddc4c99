"""Brands, the consumer-to-brand relationship (with its pairwise identifier), the brands'
API clients and tokens, and each brand's change feed."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
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
    #: Position of the last entry of this brand's change feed (see ``brands.feed``).
    feed_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BrandRelationship(Base):
    """A consumer known to a brand, and the pairwise id under which the brand knows them.

    Created by the first consent event for that brand. The pairwise id differs per brand
    (like an OpenID Connect pairwise ``sub``) so brands cannot join their data.
    """

    __tablename__ = "brand_relationships"
    __table_args__ = (
        UniqueConstraint("account_id", "brand_id"),
        # Keyset pagination of a brand's consumers: WHERE brand_id = ? AND id > ? ORDER BY id.
        Index("ix_brand_relationships_brand_id_id", "brand_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    pairwise_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_pairwise_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    brand: Mapped[Brand] = relationship()


class ChangeKind(enum.StrEnum):
    CONSENT_GRANTED = "consent.granted"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    CONSENT_EXPIRED = "consent.expired"
    #: A new text version of the purpose was published: the consent, given to an older
    #: text, no longer counts until the consumer renews it (it is not withdrawn).
    CONSENT_NEEDS_RENEWAL = "consent.needs_renewal"
    INTERESTS_CHANGED = "interests.changed"
    INTENTS_CHANGED = "intents.changed"
    CONSUMER_ERASED = "consumer.erased"
    #: A new signed checkpoint of the public consent log (no consumer: ``consumer_id``
    #: is null). Brands keep the last one and check the next is consistent with it.
    LOG_CHECKPOINT = "log.checkpoint"


class BrandChange(Base):
    """One entry of a brand's change feed: ``(brand_id, seq)`` with ``seq`` gapless per brand.

    ``seq`` is taken from ``Brand.feed_seq`` under that row's lock, so entries become
    visible in ``seq`` order: a reader following the feed never skips nor repeats one.
    The entry carries the pairwise id (not a foreign key): it outlives an erasure.
    """

    __tablename__ = "brand_changes"
    __table_args__ = (
        # "Who read my data": the consumer's entries, to test them against feed reads.
        Index("ix_brand_changes_pairwise_id_seq", "pairwise_id", "seq"),
    )

    brand_id: Mapped[int] = mapped_column(
        ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    pairwise_id: Mapped[str] = mapped_column(String(36))
    occurred_at: Mapped[datetime]
    #: What changed, without personal data (for consents: purpose key, version, expiry).
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ApiClient(Base):
    """A brand's API client (OAuth2 client-credentials). The secret is stored hashed
    (SHA-256: see ``brands.clients``)."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    #: SHA-256 hex digest of the client secret.
    secret_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(120), default="")
    #: Space-separated scopes the client may ask for.
    scopes: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    #: Digest of the secret replaced by the last rotation, still accepted until
    #: ``previous_secret_expires_at`` (the grace period), then ignored.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(255))
    previous_secret_expires_at: Mapped[datetime | None]
    secret_rotated_at: Mapped[datetime | None]

    brand: Mapped[Brand] = relationship()


class ApiToken(Base):
    """An access token issued to a client; only its SHA-256 digest is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column(
        ForeignKey("api_clients.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(255))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]

    client: Mapped[ApiClient] = relationship()
