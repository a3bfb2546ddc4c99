"""Passkeys (WebAuthn credentials) and the challenges of their ceremonies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.db import Base

#: What a challenge was handed out for; a challenge serves only that ceremony.
CHALLENGE_PURPOSES = ("register", "sign_in", "second_step", "confirm")


class Passkey(Base):
    """A discoverable WebAuthn credential: the browser or phone keeps the private key, the
    portal its public key. Signs in alone (user verification is required) or serves as the
    second step after a password."""

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    #: The credential id chosen by the authenticator (at most 1023 bytes).
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    #: COSE-encoded public key; not personal data, never exported.
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    #: WebAuthn user handle the credential was made for: random, the same for all the
    #: account's passkeys, and never the account id or the email address.
    user_handle: Mapped[bytes] = mapped_column(LargeBinary(64))
    #: The authenticator's signature counter at the last use; 0 when it keeps none. A
    #: counter that goes back means a cloned authenticator.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: Transports the browser reported (``internal``, ``hybrid``, ``usb``...): hints only.
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Whether the passkey is synced to other devices (the backup state flag).
    backed_up: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: The name the owner gave it ("My phone").
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship()


class PasskeyChallenge(Base):
    """A challenge handed to a browser and not used yet. The browser's session holds the
    challenge; this row makes it single-use and short-lived (a copied session cookie cannot
    replay a ceremony). Rows hold nothing personal and are purged once expired."""

    __tablename__ = "passkey_challenges"
    __table_args__ = (
        CheckConstraint(
            "purpose IN ('register', 'sign_in', 'second_step', 'confirm')", name="purpose_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 hex of the challenge bytes.
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
