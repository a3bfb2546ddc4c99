"""Accounts and what belongs to signing in: sessions, emailed tokens, security history."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vrm_portal.clock import utcnow
from vrm_portal.db import Base


class StaffRole(enum.StrEnum):
    DPO = "dpo"
    ADMIN = "admin"
    #: Manages one brand's API clients and webhooks; never sees consumer data.
    BRAND_OPERATOR = "brand-operator"


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    CHANGE_EMAIL = "change_email"


class EventKind(enum.StrEnum):
    REGISTERED = "registered"
    EMAIL_VERIFIED = "email_verified"
    SIGNED_IN = "signed_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGNED_OUT = "signed_out"
    SESSION_REVOKED = "session_revoked"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET_REQUESTED = "password_reset_requested"
    PASSWORD_RESET = "password_reset"
    EMAIL_CHANGE_REQUESTED = "email_change_requested"
    EMAIL_CHANGED = "email_changed"
    LOCALE_CHANGED = "locale_changed"
    STAFF_ROLE_GRANTED = "staff_role_granted"
    TWO_FACTOR_ENABLED = "two_factor_enabled"
    TWO_FACTOR_FAILED = "two_factor_failed"
    TWO_FACTOR_RESET = "two_factor_reset"
    INTERESTS_CHANGED = "interests_changed"
    INTENT_STATED = "intent_stated"
    INTENT_WITHDRAWN = "intent_withdrawn"
    INTENT_CHANGED = "intent_changed"
    INTENT_RESTORED = "intent_restored"
    SOCIAL_SIGN_IN = "social_sign_in"
    IDENTITY_LINKED = "identity_linked"
    IDENTITY_UNLINKED = "identity_unlinked"
    IDENTITY_LINK_REQUESTED = "identity_link_requested"
    PROFILE_CHANGED = "profile_changed"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_RENAMED = "passkey_renamed"
    PASSKEY_REMOVED = "passkey_removed"
    PASSKEY_USED = "passkey_used"
    PASSKEY_REJECTED = "passkey_rejected"
    TWO_FACTOR_DISABLED = "two_factor_disabled"
    RECOVERY_CODES_CREATED = "recovery_codes_created"
    RECOVERY_CODE_USED = "recovery_code_used"
    TIME_ZONE_CHANGED = "time_zone_changed"


def new_subject_key() -> str:
    return secrets.token_hex(32)


class Account(Base):
    """A person who signs in: a consumer, or a staff member when ``staff_role`` is set."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(
            "staff_role IN ('dpo', 'admin', 'brand-operator')", name="staff_role_known"
        ),
        # A brand operator is bound to exactly one brand; nobody else is bound to one.
        CheckConstraint(
            "CASE WHEN staff_role = 'brand-operator' THEN staff_brand_id IS NOT NULL"
            " ELSE staff_brand_id IS NULL END",
            name="staff_brand_only_for_operators",
        ),
        CheckConstraint("locale IN ('en', 'fr')", name="locale_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Normalised (lower-cased) address; unique, so one address is one account.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    email_verified_at: Mapped[datetime | None]
    #: Argon2id PHC string; None for an account that signs in only through a provider.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None]
    #: Preferred interface language; None means "follow the browser".
    locale: Mapped[str | None] = mapped_column(String(8))
    #: IANA time zone the consumer reads times in ("Europe/Paris"): chosen in the
    #: settings, or the one the browser reported first; None until either happens (UTC).
    time_zone: Mapped[str | None] = mapped_column(String(64))
    staff_role: Mapped[str | None] = mapped_column(String(16))
    #: The brand a ``brand-operator`` manages (None for everyone else).
    staff_brand_id: Mapped[int | None] = mapped_column(
        ForeignKey("brands.id", ondelete="RESTRICT"), index=True
    )
    #: Base32 TOTP secret of a staff member; authoritative once ``totp_enabled_at`` is set.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None]
    #: Time step of the last accepted code, so that no code is accepted twice.
    totp_last_step: Mapped[int | None]
    #: Set when an admin disables a staff account: it can no longer sign in.
    disabled_at: Mapped[datetime | None]
    #: Profile: what a brand may read, each field only under a consent that covers it
    #: (names under any channel purpose, the phone under SMS, the address under post).
    given_name: Mapped[str] = mapped_column(String(80), default="", server_default="")
    family_name: Mapped[str] = mapped_column(String(80), default="", server_default="")
    #: E.164 number (``+33612345678``) or empty.
    phone: Mapped[str] = mapped_column(String(20), default="", server_default="")
    #: Postal address as the consumer writes it on an envelope (several lines).
    postal_address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    #: "Tell me by email when a consent needs my attention" (the daily digest).
    attention_emails: Mapped[bool] = mapped_column(default=True, server_default=true())
    #: Pseudonymous key under which the consent ledger records this person; never shown.
    subject_key: Mapped[str] = mapped_column(String(64), unique=True, default=new_subject_key)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sessions: Mapped[list[AuthSession]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_staff(self) -> bool:
        return self.staff_role is not None

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None and self.totp_secret is not None

    def __repr__(self) -> str:
        return f"<Account {self.id}>"


class AuthSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored.

    Revoking the row (sign-out, "sign out other sessions", password change) ends the
    session server-side, remember-me cookie included.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    #: SHA-256 hex of the session token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    remember: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Absolute end of the session, whatever the activity.
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(String(45))

    account: Mapped[Account] = relationship(back_populates="sessions")

    __table_args__ = (Index("ix_auth_sessions_account_active", "account_id", "revoked_at"),)


class EmailToken(Base):
    """A single-use, expiring secret sent by email (verification, reset, email change)."""

    __tablename__ = "email_tokens"
    __table_args__ = (
        CheckConstraint(
            "purpose IN ('verify_email', 'reset_password', 'change_email')",
            name="purpose_known",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    #: SHA-256 hex of the token in the link.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The address being verified: the account's, or the new one for an email change.
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    #: Set when the token is used, or superseded by a newer one of the same purpose.
    used_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship()


class AccountEvent(Base):
    """The account's security history, shown to its owner ("Security activity")."""

    __tablename__ = "account_events"
    __table_args__ = (
        Index("ix_account_events_account_id_id", "account_id", "id"),
        # The consumer's timeline ("My data"), newest first.
        Index("ix_account_events_account_id_created_at", "account_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RecoveryCode(Base):
    """A single-use code that stands in for the second step when the phone or passkey is
    lost. Ten are made at a time and shown once; only their SHA-256 digest is stored."""

    __tablename__ = "recovery_codes"
    __table_args__ = (
        UniqueConstraint("account_id", "code_hash", name="uq_recovery_codes_account_id_code_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    #: SHA-256 hex of the normalised code.
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]
