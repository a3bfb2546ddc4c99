"""Identities at social / OpenID Connect providers, linked to accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class LinkedIdentity(Base):
    """A person at a provider, keyed on (provider, subject): never on the email alone."""

    __tablename__ = "linked_identities"
    __table_args__ = (
        UniqueConstraint("provider", "subject", name="uq_linked_identities_provider_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    #: The provider's configured name (``google``, ``keycloak``...).
    provider: Mapped[str] = mapped_column(String(64))
    #: The provider's stable identifier for the person (OpenID Connect ``sub``).
    subject: Mapped[str] = mapped_column(String(255))
    #: The address the provider gave at the last sign-in; for display only.
    email_seen: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship()


class PendingIdentityLink(Base):
    """A provider identity waiting for the owner of the account with its address to prove
    ownership (password, or the emailed link) before it is linked: never a silent merge."""

    __tablename__ = "pending_identity_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(254))
    #: SHA-256 hex of the secret in the emailed link; None until a link is asked for.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: What else the provider said (name), kept to show on the confirmation page.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship()
