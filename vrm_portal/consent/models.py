"""Purposes and their texts, the consent ledger, the materialised state and receipts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class PurposeCategory(enum.StrEnum):
    EMAIL_MARKETING = "email-marketing"
    SMS_MARKETING = "sms-marketing"
    POSTAL_MARKETING = "postal-marketing"
    PERSONALISATION = "personalisation"
    PARTNER_SHARING = "partner-sharing"
    ANALYTICS = "analytics"


class LegalBasis(enum.StrEnum):
    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate-interest"
    CONTRACT = "contract"


class Action(enum.StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class CollectionMethod(enum.StrEnum):
    PORTAL = "portal"
    EMAIL_CONFIRMATION = "email-confirmation"
    GPC_SIGNAL = "gpc-signal"
    EXPIRY = "expiry"
    IMPORT = "import"
    API = "api"
    STAFF = "staff"
    #: The consumer erased their account: every consent still standing ends with it.
    ERASURE = "erasure"
    #: The brand retired the purpose: every consent to it ended with it.
    PURPOSE_RETIRED = "purpose-retired"


class ConsentStatus(enum.StrEnum):
    GRANTED = "granted"
    #: Given on the page, waiting for the click in the confirmation email.
    PENDING = "pending"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


def _values(enum_class: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum_class)


class Purpose(Base):
    """One reason a brand asks for consent, e.g. "email offers"."""

    __tablename__ = "purposes"
    __table_args__ = (
        UniqueConstraint("brand_id", "key"),
        CheckConstraint(f"category IN ({_values(PurposeCategory)})", name="category_known"),
        CheckConstraint(f"legal_basis IN ({_values(LegalBasis)})", name="legal_basis_known"),
        CheckConstraint("validity_days > 0", name="validity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    #: Stable key within the brand (lower-case letters, digits, dashes).
    key: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    legal_basis: Mapped[str] = mapped_column(String(32), default=LegalBasis.CONSENT.value)
    #: How long a consent lasts before it must be renewed.
    validity_days: Mapped[int] = mapped_column(default=730)
    #: Sale of data or sharing with third parties: withdrawn by a Global Privacy Control signal.
    shares_with_third_parties: Mapped[bool] = mapped_column(default=False)
    #: The version consumers must agree to now; older grants need renewal.
    current_version: Mapped[int] = mapped_column(default=1)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When the purpose was retired: no longer asked, its consents withdrawn.
    retired_at: Mapped[datetime | None]

    brand: Mapped[Brand] = relationship()
    versions: Mapped[list[PurposeVersion]] = relationship(
        back_populates="purpose", order_by="PurposeVersion.version"
    )

    @property
    def needs_double_opt_in(self) -> bool:
        return self.category == PurposeCategory.EMAIL_MARKETING


class PurposeVersion(Base):
    """The exact text of a purpose at one version, in each language, and its hash."""

    __tablename__ = "purpose_versions"
    __table_args__ = (UniqueConstraint("purpose_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("purposes.id", ondelete="CASCADE"))
    version: Mapped[int]
    title_en: Mapped[str] = mapped_column(String(200))
    title_fr: Mapped[str] = mapped_column(String(200))
    text_en: Mapped[str] = mapped_column(Text)
    text_fr: Mapped[str] = mapped_column(Text)
    #: SHA-256 hex over the canonical JSON of the titles and texts in both languages.
    content_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)

    purpose: Mapped[Purpose] = relationship(back_populates="versions")

    def title(self, locale: str) -> str:
        return self.title_fr if locale == "fr" else self.title_en

    def text(self, locale: str) -> str:
        return self.text_fr if locale == "fr" else self.text_en


class LedgerHead(Base):
    """The last link of the chain: one row, locked by every append so the chain never forks."""

    __tablename__ = "consent_ledger_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The Merkle tree's right edge: the hashes of its complete subtrees along the right,
    #: highest first (``log/tree.py``), so an append reads no node.
    frontier: Mapped[bytes | None] = mapped_column(LargeBinary)


class ConsentEvent(Base):
    """One immutable consent change, stored as the canonical JSON document that is hashed.

    ``body`` is the record (DESIGN §5): it holds the subject key and never an email or a
    name. The other columns are copies for indexing, and ``verify-ledger`` checks that
    they agree with the body. The table refuses UPDATE and DELETE (triggers).
    """

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_subject_key_seq", "subject_key", "seq"),
        Index("ix_consent_events_brand_slug_seq", "brand_slug", "seq"),
        # The consumer's timeline ("My data"), newest first.
        Index("ix_consent_events_subject_key_occurred_at", "subject_key", "occurred_at", "seq"),
    )

    #: Position in the chain: 1, 2, 3… with no gap.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    subject_key: Mapped[str] = mapped_column(String(64))
    brand_slug: Mapped[str] = mapped_column(String(64))
    purpose_key: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    #: Canonical JSON (sorted keys, UTF-8, no spaces) of the event with ``prev_hash``.
    body: Mapped[str] = mapped_column(Text)
    #: SHA-256 of ``body``.
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ConsentState(Base):
    """The consumer's current answer for one purpose, derived from the ledger."""

    __tablename__ = "consent_states"
    __table_args__ = (
        UniqueConstraint("account_id", "purpose_id"),
        CheckConstraint(f"status IN ({_values(ConsentStatus)})", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    purpose_id: Mapped[int] = mapped_column(
        ForeignKey("purposes.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    #: The text version the answer was given to, and the hash of that text.
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    #: When the current grant was given (None unless granted) and when it lapses.
    granted_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    method: Mapped[str] = mapped_column(String(32))
    #: Granted while the browser sent a Global Privacy Control signal: an explicit choice
    #: that the signal does not override.
    granted_despite_gpc: Mapped[bool] = mapped_column(default=False)
    last_event_seq: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    purpose: Mapped[Purpose] = relationship()


class ConsentReceipt(Base):
    """The signed receipt of one consent event, kept so the consumer can download it."""

    __tablename__ = "consent_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[str] = mapped_column(String(36), unique=True)
    #: The event's place in the ledger: None until the sequencer integrates it (the
    #: receipt itself names the event by id and content hash, see ``sequencer``).
    event_seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    #: Compact JWS (EdDSA) whose payload is the receipt JSON.
    jws: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_consent_receipts_account_id_id", "account_id", "id"),)


class EventIntake(Base):
    """A consent event recorded and receipted, waiting for the sequencer to give it its
    place in the ledger (``consent/sequencer.py``). Deleted when integrated, in the same
    transaction as its ``consent_events`` row."""

    __tablename__ = "consent_event_intake"

    #: Integration order: ascending ``id`` among the committed rows.
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    #: Canonical JSON of the event's content (``NewEvent.content``): no seq, no prev_hash.
    content: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    #: Where the sequencer writes the event's position (no foreign keys: an erased
    #: account's rows go, its events still enter the ledger).
    receipt_id: Mapped[str] = mapped_column(String(36))
    state_id: Mapped[int | None]
    #: The brand feed entry it becomes: the brand, the consumer's pairwise id, the data.
    brand_id: Mapped[int]
    pairwise_id: Mapped[str] = mapped_column(String(36))
    feed_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: When the change committed its intake row (the feed lag is measured from here).
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PendingConfirmation(Base):
    """A grant of an email purpose waiting for the click in the confirmation email."""

    __tablename__ = "consent_confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    purpose_id: Mapped[int] = mapped_column(ForeignKey("purposes.id", ondelete="CASCADE"))
    version: Mapped[int]
    #: SHA-256 hex of the token in the link.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    #: Set when confirmed, cancelled or superseded.
    closed_at: Mapped[datetime | None]

    purpose: Mapped[Purpose] = relationship()
