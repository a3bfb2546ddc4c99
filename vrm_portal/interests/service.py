"""Declaring interests and stating intents, and what of them a brand may see.

Interests and intents reach a brand only while the consumer's consent to that brand's
personalisation purpose is active. Every change locks the consumer's account row first,
so two identical requests racing each other record one change, never two.
"""

from __future__ import annotations

import calendar
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import Account, EventKind
from vrm_portal.brands import feed
from vrm_portal.brands.models import Brand, ChangeKind
from vrm_portal.clock import utcnow
from vrm_portal.consent.models import (
    ConsentState,
    ConsentStatus,
    Purpose,
    PurposeCategory,
    PurposeVersion,
)
from vrm_portal.consent.service import is_active, states_of, version_of
from vrm_portal.interests.models import DeclaredInterest, Intent, IntentBrand, IntentCategory, Topic

SUMMARY_MAX = 200
HORIZON_MIN = 1
HORIZON_MAX = 60
BUDGET_MAX = 10_000_000
#: The shape of a brand slug or topic key (see the catalogue); anything else is unknown.
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


class InterestsError(Exception):
    """Base class of interest and intent problems."""


class UnknownTopic(InterestsError):
    """A topic key the brand does not offer (unknown, retired, or another brand's)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = sorted(keys)
        super().__init__(", ".join(self.keys))


class IntentInvalid(InterestsError):
    """The intent breaks a rule; ``reason`` says which (views map it to a field)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        #: ``category``, ``summary``, ``horizon``, ``budget_negative``, ``budget_too_high``,
        #: ``budget_order``, ``no_brand`` or ``unknown_brand``.
        self.reason = reason


class IntentAlreadyStated(InterestsError):
    """The same plan is already active (a double submit): nothing was added."""

    def __init__(self, intent: Intent) -> None:
        super().__init__(f"intent {intent.id}")
        self.intent = intent


class IntentNotFound(InterestsError):
    """No such intent among the consumer's own (unknown id, or somebody else's)."""


@dataclass(frozen=True)
class InterestChange:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


@dataclass(frozen=True)
class IntentInput:
    """What the consumer typed; amounts are whole euros."""

    category: str
    summary: str
    horizon_months: int
    budget_min: int | None
    budget_max: int | None
    brand_slugs: frozenset[str]


class WithdrawOutcome(enum.Enum):
    WITHDRAWN = "withdrawn"
    #: Already withdrawn (double submit): nothing recorded.
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Withdrawal:
    intent: Intent
    outcome: WithdrawOutcome


@dataclass(frozen=True)
class Visibility:
    """Whether a brand may currently see the consumer's interests and plans, and under
    which purpose (None when the brand asks for no personalisation consent)."""

    brand: Brand
    purpose: Purpose | None
    version: PurposeVersion | None
    allowed: bool


@dataclass(frozen=True)
class SharedProfile:
    interests: list[Topic]
    intents: list[Intent]
    allowed: bool


def _lock_account(session: Session, account: Account) -> None:
    """Serialise this consumer's changes (PostgreSQL row lock; SQLite writes are serial)."""
    session.execute(select(Account.id).where(Account.id == account.id).with_for_update())


def offered_topics(session: Session, brand: Brand) -> list[Topic]:
    """The brand's topics a consumer may choose now, in catalogue order."""
    return list(
        session.scalars(
            select(Topic)
            .where(Topic.brand_id == brand.id, Topic.retired.is_(False))
            .order_by(Topic.position, Topic.id)
        )
    )


def _chosen_topic_ids(session: Session, account: Account, brand: Brand) -> set[int]:
    return set(
        session.scalars(
            select(DeclaredInterest.topic_id)
            .join(Topic, Topic.id == DeclaredInterest.topic_id)
            .where(DeclaredInterest.account_id == account.id, Topic.brand_id == brand.id)
        )
    )


def topic_choices(session: Session, account: Account, brand: Brand) -> list[tuple[Topic, bool]]:
    """Each topic the brand offers, and whether the consumer chose it."""
    chosen = _chosen_topic_ids(session, account, brand)
    return [(topic, topic.id in chosen) for topic in offered_topics(session, brand)]


def set_interests(
    session: Session,
    account: Account,
    brand: Brand,
    topic_keys: set[str],
    client: ClientInfo | None = None,
) -> InterestChange:
    """Make ``topic_keys`` the consumer's interests among the topics ``brand`` offers.

    Refused as a whole (``UnknownTopic``) when a key is not offered by this brand.
    Choices of retired topics are kept. The change is recorded in the account's history,
    only when something changed.
    """
    _lock_account(session, account)
    offered = {topic.key: topic for topic in offered_topics(session, brand)}
    unknown = set(topic_keys) - offered.keys()
    if unknown:
        raise UnknownTopic(unknown)
    chosen = _chosen_topic_ids(session, account, brand)
    added = sorted(key for key in topic_keys if offered[key].id not in chosen)
    removed = sorted(
        key for key, topic in offered.items() if topic.id in chosen and key not in topic_keys
    )
    for key in added:
        session.add(DeclaredInterest(account_id=account.id, topic_id=offered[key].id))
    if removed:
        removed_ids = [offered[key].id for key in removed]
        for interest in session.scalars(
            select(DeclaredInterest).where(
                DeclaredInterest.account_id == account.id,
                DeclaredInterest.topic_id.in_(removed_ids),
            )
        ):
            session.delete(interest)
    change = InterestChange(added=added, removed=removed)
    if change.changed:
        session.flush()
        record_event(
            session,
            account,
            EventKind.INTERESTS_CHANGED,
            client,
            brand=brand.slug,
            added=added,
            removed=removed,
        )
        _tell_brands(session, account, {brand.id}, ChangeKind.INTERESTS_CHANGED, utcnow())
    return change


def brands_that_may_see(
    session: Session, account: Account, brand_ids: set[int], now: datetime
) -> set[int]:
    """Those of ``brand_ids`` that may see the consumer's interests and plans at ``now``:
    an active consent (granted, to the current text, not expired) to one of the brand's
    personalisation purposes, the rule by which the brand API shows them."""
    if not brand_ids:
        return set()
    return set(
        session.scalars(
            select(Purpose.brand_id)
            .join(ConsentState, ConsentState.purpose_id == Purpose.id)
            .where(
                ConsentState.account_id == account.id,
                Purpose.brand_id.in_(sorted(brand_ids)),
                Purpose.category == PurposeCategory.PERSONALISATION.value,
                ConsentState.status == ConsentStatus.GRANTED.value,
                ConsentState.version == Purpose.current_version,
                ConsentState.expires_at > now,
            )
        )
    )


def _tell_brands(
    session: Session, account: Account, brand_ids: set[int], kind: ChangeKind, now: datetime
) -> None:
    """Put the change in the feed of each of ``brand_ids`` that may see it: a brand without
    the personalisation consent must not even learn that something changed."""
    allowed = brands_that_may_see(session, account, brand_ids, now)
    feed.append_for_relationships(session, account.id, allowed, kind, now)


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, the day clamped to the month's length."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _one_line(text: str) -> str:
    """``text`` without control characters, its spaces collapsed."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _validated(session: Session, data: IntentInput) -> tuple[str, list[Brand]]:
    """The cleaned summary and the chosen brands, or ``IntentInvalid``."""
    if data.category not in {c.value for c in IntentCategory}:
        raise IntentInvalid("category")
    summary = _one_line(data.summary)
    if len(summary) > SUMMARY_MAX:
        raise IntentInvalid("summary")
    if not HORIZON_MIN <= data.horizon_months <= HORIZON_MAX:
        raise IntentInvalid("horizon")
    budgets = [b for b in (data.budget_min, data.budget_max) if b is not None]
    if any(b < 0 for b in budgets):
        raise IntentInvalid("budget_negative")
    if any(b > BUDGET_MAX for b in budgets):
        raise IntentInvalid("budget_too_high")
    if (
        data.budget_min is not None
        and data.budget_max is not None
        and data.budget_min > data.budget_max
    ):
        raise IntentInvalid("budget_order")
    if not data.brand_slugs:
        raise IntentInvalid("no_brand")
    if not all(SLUG.fullmatch(slug) for slug in data.brand_slugs):
        raise IntentInvalid("unknown_brand")
    brands = list(
        session.scalars(
            select(Brand).where(Brand.slug.in_(sorted(data.brand_slugs))).order_by(Brand.name)
        )
    )
    if len(brands) != len(data.brand_slugs):
        raise IntentInvalid("unknown_brand")
    return summary, brands


def _is_active(intent: Intent, today: date) -> bool:
    return intent.withdrawn_at is None and intent.ends_on >= today


def state_intent(
    session: Session,
    account: Account,
    data: IntentInput,
    today: date,
    client: ClientInfo | None = None,
) -> Intent:
    """Record a plan the consumer states, shown to the brands they chose until it lapses
    ``horizon_months`` after ``today``.

    ``IntentInvalid`` for input that breaks a rule; ``IntentAlreadyStated`` when the very
    same plan is still active (a form sent twice).
    """
    summary, brands = _validated(session, data)
    _lock_account(session, account)
    brand_ids = {brand.id for brand in brands}
    active, _past = intents_of(session, account, today)
    for existing in active:
        if (
            existing.category == data.category
            and existing.summary == summary
            and existing.horizon_months == data.horizon_months
            and existing.budget_min == data.budget_min
            and existing.budget_max == data.budget_max
            and {link.brand_id for link in existing.brands} == brand_ids
        ):
            raise IntentAlreadyStated(existing)
    intent = Intent(
        account_id=account.id,
        category=data.category,
        summary=summary,
        horizon_months=data.horizon_months,
        budget_min=data.budget_min,
        budget_max=data.budget_max,
        ends_on=add_months(today, data.horizon_months),
        brands=[IntentBrand(brand_id=brand.id) for brand in brands],
    )
    session.add(intent)
    session.flush()
    record_event(
        session,
        account,
        EventKind.INTENT_STATED,
        client,
        intent=intent.id,
        category=intent.category,
        brands=[brand.slug for brand in brands],
        ends_on=intent.ends_on.isoformat(),
    )
    _tell_brands(session, account, brand_ids, ChangeKind.INTENTS_CHANGED, utcnow())
    return intent


def withdraw_intent(
    session: Session,
    account: Account,
    intent_id: int,
    now: datetime,
    client: ClientInfo | None = None,
) -> Withdrawal:
    """Stop showing a plan to any brand. ``IntentNotFound`` unless it is the consumer's."""
    _lock_account(session, account)
    intent = session.scalar(
        select(Intent)
        .where(Intent.id == intent_id, Intent.account_id == account.id)
        .execution_options(populate_existing=True)
    )
    if intent is None:
        raise IntentNotFound(str(intent_id))
    if intent.withdrawn_at is not None:
        return Withdrawal(intent, WithdrawOutcome.UNCHANGED)
    intent.withdrawn_at = now
    session.flush()
    record_event(session, account, EventKind.INTENT_WITHDRAWN, client, intent=intent.id)
    _tell_brands(
        session, account, {link.brand_id for link in intent.brands}, ChangeKind.INTENTS_CHANGED, now
    )
    return Withdrawal(intent, WithdrawOutcome.WITHDRAWN)


#: How long after a withdrawal the consumer may still undo it.
UNDO_WINDOW = timedelta(minutes=5)


class ChangeOutcome(enum.Enum):
    CHANGED = "changed"
    #: The form was sent with what the plan already says: nothing recorded.
    UNCHANGED = "unchanged"


def _own_intent(session: Session, account: Account, intent_id: int) -> Intent:
    intent = session.scalar(
        select(Intent)
        .where(Intent.id == intent_id, Intent.account_id == account.id)
        .execution_options(populate_existing=True)
    )
    if intent is None:
        raise IntentNotFound(str(intent_id))
    return intent


def change_intent(
    session: Session,
    account: Account,
    intent_id: int,
    data: IntentInput,
    today: date,
    client: ClientInfo | None = None,
) -> ChangeOutcome:
    """Change one of the consumer's current plans (same rules as stating one).

    A new horizon starts from ``today``; an unchanged one keeps the plan's end date. The
    brands that may see the plan, before or after the change, hear of it through their
    feed (a brand taken off the list learns the plan is gone from what it sees).
    ``IntentNotFound`` unless it is the consumer's own plan, still current.
    """
    summary, brands = _validated(session, data)
    _lock_account(session, account)
    intent = _own_intent(session, account, intent_id)
    if not _is_active(intent, today):
        raise IntentNotFound(str(intent_id))
    before = {link.brand_id for link in intent.brands}
    after = {brand.id for brand in brands}
    if (
        intent.category == data.category
        and intent.summary == summary
        and intent.horizon_months == data.horizon_months
        and intent.budget_min == data.budget_min
        and intent.budget_max == data.budget_max
        and before == after
    ):
        return ChangeOutcome.UNCHANGED
    if intent.horizon_months != data.horizon_months:
        intent.ends_on = add_months(today, data.horizon_months)
    intent.category = data.category
    intent.summary = summary
    intent.horizon_months = data.horizon_months
    intent.budget_min = data.budget_min
    intent.budget_max = data.budget_max
    intent.brands = [link for link in intent.brands if link.brand_id in after] + [
        IntentBrand(brand_id=brand_id) for brand_id in sorted(after - before)
    ]
    session.flush()
    record_event(
        session,
        account,
        EventKind.INTENT_CHANGED,
        client,
        intent=intent.id,
        category=intent.category,
        brands=[brand.slug for brand in brands],
        ends_on=intent.ends_on.isoformat(),
    )
    _tell_brands(session, account, before | after, ChangeKind.INTENTS_CHANGED, utcnow())
    return ChangeOutcome.CHANGED


def undoable(intent: Intent, now: datetime) -> bool:
    """The plan was withdrawn less than ``UNDO_WINDOW`` ago: the withdrawal may be undone."""
    return intent.withdrawn_at is not None and now - _aware(intent.withdrawn_at) < UNDO_WINDOW


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def restore_intent(
    session: Session,
    account: Account,
    intent_id: int,
    now: datetime,
    client: ClientInfo | None = None,
) -> Intent:
    """Undo a withdrawal made less than ``UNDO_WINDOW`` ago: the plan is shown again to
    the brands it was shown to (those that may see it hear of it through their feed).

    ``IntentNotFound`` unless it is the consumer's own plan, withdrawn within the window
    and not lapsed since.
    """
    _lock_account(session, account)
    intent = _own_intent(session, account, intent_id)
    if not undoable(intent, now) or intent.ends_on < now.date():
        raise IntentNotFound(str(intent_id))
    intent.withdrawn_at = None
    session.flush()
    record_event(session, account, EventKind.INTENT_RESTORED, client, intent=intent.id)
    _tell_brands(
        session, account, {link.brand_id for link in intent.brands}, ChangeKind.INTENTS_CHANGED, now
    )
    return intent


def intents_of(
    session: Session, account: Account, today: date
) -> tuple[list[Intent], list[Intent]]:
    """The consumer's intents, newest first: the active ones, and the past ones (withdrawn,
    or lapsed: their end date is before ``today``)."""
    intents = session.scalars(
        select(Intent)
        .where(Intent.account_id == account.id)
        .order_by(Intent.created_at.desc(), Intent.id.desc())
    ).all()
    active = [i for i in intents if _is_active(i, today)]
    past = [i for i in intents if not _is_active(i, today)]
    return active, past


def personalisation_purpose(session: Session, brand: Brand) -> Purpose | None:
    """The brand's purpose under which it may see interests and plans (if it asks for one)."""
    return session.scalar(
        select(Purpose)
        .where(
            Purpose.brand_id == brand.id,
            Purpose.category == PurposeCategory.PERSONALISATION.value,
            Purpose.current_version > 0,
        )
        .order_by(Purpose.position, Purpose.id)
        .limit(1)
    )


def visibility(
    session: Session, account: Account, brands: Iterable[Brand], now: datetime
) -> dict[int, Visibility]:
    """For each brand (by id): may it see the consumer's interests and plans right now?"""
    result: dict[int, Visibility] = {}
    purposes: dict[int, Purpose] = {}
    for brand in brands:
        purpose = personalisation_purpose(session, brand)
        if purpose is None:
            result[brand.id] = Visibility(brand, None, None, allowed=False)
        else:
            purposes[brand.id] = purpose
            result[brand.id] = Visibility(brand, purpose, version_of(session, purpose), False)
    states = states_of(session, account, purposes.values())
    for brand_id, purpose in purposes.items():
        seen = result[brand_id]
        allowed = is_active(states.get(purpose.id), purpose, now)
        result[brand_id] = Visibility(seen.brand, seen.purpose, seen.version, allowed)
    return result


def shared_with(session: Session, brand: Brand, account: Account, now: datetime) -> SharedProfile:
    """What ``brand`` may see of the consumer's interests and plans at ``now``: nothing
    unless the brand's personalisation consent is active; then the brand's own offered
    topics the consumer chose, and the active plans the consumer showed to this brand."""
    if not visibility(session, account, [brand], now)[brand.id].allowed:
        return SharedProfile(interests=[], intents=[], allowed=False)
    interests = list(
        session.scalars(
            select(Topic)
            .join(DeclaredInterest, DeclaredInterest.topic_id == Topic.id)
            .where(
                DeclaredInterest.account_id == account.id,
                Topic.brand_id == brand.id,
                Topic.retired.is_(False),
            )
            .order_by(Topic.position, Topic.id)
        )
    )
    intents = list(
        session.scalars(
            select(Intent)
            .join(IntentBrand, IntentBrand.intent_id == Intent.id)
            .where(
                Intent.account_id == account.id,
                IntentBrand.brand_id == brand.id,
                Intent.withdrawn_at.is_(None),
                Intent.ends_on >= now.date(),
            )
            .order_by(Intent.created_at.desc(), Intent.id.desc())
        )
    )
    return SharedProfile(interests=interests, intents=intents, allowed=True)
