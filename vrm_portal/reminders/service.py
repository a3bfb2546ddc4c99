"""What needs the consumer's attention, the email setting, its one-click off link, and the
daily digest's bookkeeping.

A consent needs attention when it is granted and still running, and either the consumer
agreed to an older text than the purpose's current one (it no longer counts until they
agree to the new text) or it lapses within ``days`` days. Withdrawn, expired and pending
consents never do: the consumer already chose, and nothing is chased.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand
from vrm_portal.consent.models import ConsentState, ConsentStatus, Purpose, PurposeVersion
from vrm_portal.reminders.models import ReminderDigest

#: Salt of the off-link tokens: a token signed for anything else never turns emails off.
OFF_LINK_SALT = "vrm-portal.reminders.attention-emails-off"


class Reason(enum.StrEnum):
    #: The purpose has a new text: the old agreement no longer counts until renewed.
    RENEW = "renew"
    #: Granted to the current text, and it lapses soon.
    EXPIRING = "expiring"


@dataclass(frozen=True)
class AttentionItem:
    """One consent that needs the consumer's attention."""

    brand_slug: str
    brand_name: str
    purpose_key: str
    title_en: str
    title_fr: str
    reason: Reason
    expires_at: datetime

    def title(self, locale: str) -> str:
        """The purpose's title (of its current text) in ``locale``."""
        return self.title_fr if locale == "fr" else self.title_en


@dataclass(frozen=True)
class BrandItems:
    """The items of one brand, for the digest's one link per brand."""

    brand_slug: str
    brand_name: str
    items: list[AttentionItem] = field(default_factory=list)


class OffLinkInvalid(Exception):
    """The off link was cut, tampered with, or names an account that is gone or whose
    address has changed since the email was sent."""


def _needs_attention(now: datetime, days: int) -> ColumnElement[bool]:
    """The condition on ``ConsentState`` joined with its ``Purpose``."""
    return and_(
        ConsentState.status == ConsentStatus.GRANTED.value,
        Purpose.current_version > 0,
        ConsentState.expires_at > now,
        or_(
            ConsentState.version < Purpose.current_version,
            ConsentState.expires_at <= now + timedelta(days=days),
        ),
    )


def attention_items(
    session: Session, account: Account, *, now: datetime, days: int
) -> list[AttentionItem]:
    """The consents of ``account`` that need attention, by brand name then purpose order.

    ``days`` is the horizon of "expires soon" (the ``REMINDER_DAYS`` setting). Staff
    accounts have none: they do not give consents here.
    """
    if account.is_staff:
        return []
    rows = session.execute(
        select(
            Brand.slug,
            Brand.name,
            Purpose.key,
            PurposeVersion.title_en,
            PurposeVersion.title_fr,
            ConsentState.version,
            Purpose.current_version,
            ConsentState.expires_at,
        )
        .join(Purpose, Purpose.id == ConsentState.purpose_id)
        .join(Brand, Brand.id == Purpose.brand_id)
        .join(
            PurposeVersion,
            and_(
                PurposeVersion.purpose_id == Purpose.id,
                PurposeVersion.version == Purpose.current_version,
            ),
        )
        .where(ConsentState.account_id == account.id, _needs_attention(now, days))
        .order_by(Brand.name, Brand.id, Purpose.position, Purpose.id)
    )
    items = []
    for slug, name, key, title_en, title_fr, version, current, expires_at in rows:
        assert expires_at is not None  # the query keeps running grants only
        items.append(
            AttentionItem(
                brand_slug=slug,
                brand_name=name,
                purpose_key=key,
                title_en=title_en,
                title_fr=title_fr,
                reason=Reason.RENEW if version < current else Reason.EXPIRING,
                expires_at=expires_at,
            )
        )
    return items


def attention_panel(
    session: Session, account: Account, *, now: datetime, days: int
) -> list[AttentionItem] | None:
    """The items of the home page's "What needs your attention" panel; None for a staff
    account, which gets no panel at all."""
    if account.is_staff:
        return None
    return attention_items(session, account, now=now, days=days)


def by_brand(items: list[AttentionItem]) -> list[BrandItems]:
    """``items`` grouped by brand, keeping their order."""
    groups: dict[str, BrandItems] = {}
    for item in items:
        group = groups.setdefault(item.brand_slug, BrandItems(item.brand_slug, item.brand_name))
        group.items.append(item)
    return list(groups.values())


# ---- the setting and its one-click off link ---------------------------------------


def set_attention_emails(session: Session, account: Account, wanted: bool) -> bool:
    """Turn the attention digest on or off; True when the setting changed."""
    if account.attention_emails == wanted:
        return False
    account.attention_emails = wanted
    session.flush()
    return True


def _address_tag(secret_key: str, email: str) -> str:
    """Binds a link to the address it was sent to, without showing it in the URL."""
    digest = hmac.new(secret_key.encode(), f"{OFF_LINK_SALT}:{email}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=OFF_LINK_SALT)


def off_token(secret_key: str, account: Account) -> str:
    """The token of the digest's one-click off link: the account id, signed with the
    portal's secret. It has no expiry (a link in an old email must still work), and it
    is bound to the address the email went to."""
    return str(_serializer(secret_key).dumps([account.id, _address_tag(secret_key, account.email)]))


def account_for_off_token(session: Session, secret_key: str, token: str) -> Account:
    """The account an off link belongs to, or ``OffLinkInvalid``."""
    try:
        payload: Any = _serializer(secret_key).loads(token)
    except BadData as exc:
        raise OffLinkInvalid("bad signature") from exc
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not isinstance(payload[0], int)
        or isinstance(payload[0], bool)
        or not isinstance(payload[1], str)
    ):
        raise OffLinkInvalid("unexpected payload")
    account = session.get(Account, payload[0])
    if account is None or not hmac.compare_digest(
        payload[1], _address_tag(secret_key, account.email)
    ):
        raise OffLinkInvalid("no such account or address")
    return account


# ---- the daily digest ---------------------------------------------------------------


def receives_digest(account: Account) -> bool:
    """A consumer with a confirmed address who left the setting on."""
    return not account.is_staff and account.is_verified and account.attention_emails


def _due_accounts(now: datetime, days: int, day: date) -> Any:
    """Accounts that get a digest on ``day``, with how many items, not yet planned."""
    return (
        select(Account.id, func.count(ConsentState.id))
        .join(ConsentState, ConsentState.account_id == Account.id)
        .join(Purpose, Purpose.id == ConsentState.purpose_id)
        .where(
            Account.staff_role.is_(None),
            Account.email_verified_at.is_not(None),
            Account.attention_emails.is_(True),
            _needs_attention(now, days),
            ~exists().where(ReminderDigest.account_id == Account.id, ReminderDigest.sent_on == day),
        )
        .group_by(Account.id)
    )


def count_due(session: Session, *, now: datetime, days: int, day: date) -> int:
    """How many accounts still get a digest on ``day`` (the daily job's progress total)."""
    due = _due_accounts(now, days, day).subquery()
    return session.scalar(select(func.count()).select_from(due)) or 0


def due_batch(
    session: Session, *, now: datetime, days: int, day: date, after: int, limit: int
) -> list[tuple[int, int]]:
    """The next ``limit`` accounts (by id, after ``after``) that get a digest on ``day``
    and have none planned yet, each with its number of items."""
    rows = session.execute(
        _due_accounts(now, days, day).where(Account.id > after).order_by(Account.id).limit(limit)
    )
    return [(int(account_id), int(count)) for account_id, count in rows]


def claim_digest(session: Session, account_id: int, day: date, items: int) -> bool:
    """Record the digest of ``account_id`` for ``day``; False when one already exists.

    The unique ``(account_id, sent_on)`` decides, even between two runs racing each
    other: the insert is made in a savepoint, so a refused one leaves the rest of the
    transaction intact. Call it before queueing anything else in the transaction (a
    savepoint's commit or rollback also fires the session's commit and rollback hooks).
    """
    try:
        with session.begin_nested():
            session.add(ReminderDigest(account_id=account_id, sent_on=day, items=items))
    except IntegrityError:
        return False
    return True


def digest_of(session: Session, account_id: int, day: date) -> ReminderDigest | None:
    return session.scalar(
        select(ReminderDigest).where(
            ReminderDigest.account_id == account_id, ReminderDigest.sent_on == day
        )
    )


def has_later_digest(session: Session, account_id: int, day: date) -> bool:
    """A digest was planned after ``day``: it covers everything an older one would say."""
    found = session.scalar(
        select(ReminderDigest.id)
        .where(ReminderDigest.account_id == account_id, ReminderDigest.sent_on > day)
        .limit(1)
    )
    return found is not None
