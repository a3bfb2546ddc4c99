"""What a brand may read: its consumers, each with only what their active consents cover,
and its change feed. Read-only, in bulk: a page costs the same few queries whatever its
size or position (keyset pagination on indexed ids)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, Select, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from vrm_portal.accounts.models import Account
from vrm_portal.brands.feed import change_document
from vrm_portal.brands.models import BrandChange, BrandRelationship
from vrm_portal.consent.models import ConsentState, ConsentStatus, Purpose, PurposeCategory
from vrm_portal.db import utc_iso
from vrm_portal.interests.models import DeclaredInterest, Intent, IntentBrand, Topic

#: Profile fields each purpose category lets the brand read.
_CHANNELS = {
    PurposeCategory.EMAIL_MARKETING.value: ("email",),
    PurposeCategory.SMS_MARKETING.value: ("phone",),
    PurposeCategory.POSTAL_MARKETING.value: ("postal_address",),
}
#: Read under any channel purpose: to address the consumer by name, in their language.
_ADDRESSING = ("given_name", "family_name", "language")


@dataclass
class Projection:
    """Consumers as the brand may see them, and what the read covered (access records)."""

    items: list[dict[str, Any]]
    #: Relationship ids of the first and last consumer (keyset position).
    first_id: int = 0
    last_id: int = 0
    fields: set[str] = field(default_factory=set)


def profile_fields(categories: set[str]) -> list[str]:
    """The profile fields consents of ``categories`` let the brand read (none without a
    channel consent)."""
    names = [name for category in categories for name in _CHANNELS.get(category, ())]
    return [*_ADDRESSING, *sorted(names)] if names else []


def consumers_page(
    session: Session, brand_id: int, after: int, limit: int, now: datetime
) -> Projection:
    """Up to ``limit`` of the brand's consumers whose relationship id is above ``after``."""
    relationships = session.execute(
        select(
            BrandRelationship.id,
            BrandRelationship.account_id,
            BrandRelationship.pairwise_id,
            utc_iso(BrandRelationship.created_at),
        )
        .where(BrandRelationship.brand_id == brand_id, BrandRelationship.id > after)
        .order_by(BrandRelationship.id)
        .limit(limit)
    ).all()
    if not relationships:
        return Projection(items=[])
    # The page's accounts as a keyset range, not a list of a thousand parameters.
    return _project(session, brand_id, relationships, now, (after, relationships[-1][0]))


_ONE = select(
    BrandRelationship.id,
    BrandRelationship.account_id,
    BrandRelationship.pairwise_id,
    utc_iso(BrandRelationship.created_at),
).where(
    BrandRelationship.pairwise_id == bindparam("pairwise_id"),
    BrandRelationship.brand_id == bindparam("brand_id"),
)


def consumer(session: Session, brand_id: int, pairwise_id: str, now: datetime) -> Projection:
    """The one consumer the brand knows by ``pairwise_id`` (no items when it does not)."""
    relationships = session.execute(_ONE, {"pairwise_id": pairwise_id, "brand_id": brand_id}).all()
    return _project(session, brand_id, relationships, now)


def relationship_of(session: Session, brand_id: int, pairwise_id: str) -> tuple[int, int] | None:
    """(relationship id, account id) of the brand's consumer ``pairwise_id``."""
    row = session.execute(
        select(BrandRelationship.id, BrandRelationship.account_id).where(
            BrandRelationship.pairwise_id == pairwise_id, BrandRelationship.brand_id == brand_id
        )
    ).first()
    return (row[0], row[1]) if row else None


# Statements built once (a lookup runs them on every call). ``_BY_IDS`` take the account
# ids as a list; ``_IN_RANGE`` take a page's keyset range of relationship ids instead.
_IN_RANGE = select(BrandRelationship.account_id).where(
    BrandRelationship.brand_id == bindparam("brand_id"),
    BrandRelationship.id > bindparam("after"),
    BrandRelationship.id <= bindparam("last"),
)
_CONSENTS = (
    select(
        ConsentState.account_id,
        Purpose.key,
        Purpose.category,
        ConsentState.version,
        utc_iso(ConsentState.granted_at),
        utc_iso(ConsentState.expires_at),
    )
    .join(Purpose, Purpose.id == ConsentState.purpose_id)
    .where(
        Purpose.brand_id == bindparam("brand_id"),
        ConsentState.status == ConsentStatus.GRANTED.value,
        ConsentState.version == Purpose.current_version,
        ConsentState.expires_at > bindparam("now", type_=ConsentState.expires_at.type),
    )
    .order_by(ConsentState.account_id, Purpose.position, Purpose.id)
)
_CONSENTS_BY_IDS = _CONSENTS.where(ConsentState.account_id.in_(bindparam("ids", expanding=True)))
_CONSENTS_IN_RANGE = _CONSENTS.where(ConsentState.account_id.in_(_IN_RANGE))
_ACCOUNTS = select(
    Account.id,
    Account.given_name,
    Account.family_name,
    Account.locale,
    Account.email,
    Account.phone,
    Account.postal_address,
)
_ACCOUNTS_BY_IDS = _ACCOUNTS.where(Account.id.in_(bindparam("ids", expanding=True)))
_ACCOUNTS_IN_RANGE = _ACCOUNTS.where(Account.id.in_(_IN_RANGE))
# PostgreSQL plans a range subquery as a scan of the whole table (1,000 of 100,000 rows
# looks cheap to hash); one array parameter keeps it on the indexes, unparsed by psycopg.
_ID_ARRAY = bindparam("id_array", type_=ARRAY(Integer))
_CONSENTS_BY_ARRAY = _CONSENTS.where(ConsentState.account_id == any_(_ID_ARRAY))
_ACCOUNTS_BY_ARRAY = _ACCOUNTS.where(Account.id == any_(_ID_ARRAY))


def _project(
    session: Session,
    brand_id: int,
    relationships: Sequence[Row[int, int, str, str]],
    now: datetime,
    page_range: tuple[int, int] | None = None,
) -> Projection:
    if not relationships:
        return Projection(items=[])
    account_ids = [row[1] for row in relationships]
    params: dict[str, Any] = {"brand_id": brand_id, "now": now}
    by_array = page_range is not None and session.get_bind().dialect.name == "postgresql"
    if by_array:
        params["id_array"] = account_ids
        page_range = None
    elif page_range is None:
        params["ids"] = account_ids
    else:
        params["after"], params["last"] = page_range
    consents: dict[int, list[dict[str, Any]]] = defaultdict(list)
    categories: dict[int, set[str]] = defaultdict(set)
    query = (
        _CONSENTS_BY_ARRAY
        if by_array
        else _CONSENTS_BY_IDS
        if page_range is None
        else _CONSENTS_IN_RANGE
    )
    for account_id, key, category, version, granted_at, expires_at in session.execute(
        query, params
    ):
        consents[account_id].append(
            {
                "purpose": key,
                "category": category,
                "version": version,
                "granted_at": granted_at,
                "expires_at": expires_at,
            }
        )
        categories[account_id].add(category)

    covered: dict[int, list[str]] = {}
    for account_id, cats in categories.items():
        if names := profile_fields(cats):
            covered[account_id] = names
    accounts_query = (
        _ACCOUNTS_BY_ARRAY
        if by_array
        else _ACCOUNTS_BY_IDS
        if page_range is None
        else _ACCOUNTS_IN_RANGE
    )
    profiles = _profiles(session, covered, params, accounts_query)
    personalised = [
        a for a, cats in categories.items() if PurposeCategory.PERSONALISATION.value in cats
    ]
    in_page = _IN_RANGE if page_range is not None else None
    interests, intents = _personalisation(session, brand_id, personalised, now, in_page, params)

    projection = Projection(items=[], first_id=relationships[0][0], last_id=relationships[-1][0])
    fields = projection.fields
    for _id, account_id, pairwise_id, created_at in relationships:
        item: dict[str, Any] = {
            "consumer_id": pairwise_id,
            "known_since": created_at,
            "consents": consents.get(account_id, []),
            "profile": profiles.get(account_id, {}),
        }
        if account_id in interests:
            item["interests"] = interests[account_id]
            item["intents"] = intents.get(account_id, [])
        projection.items.append(item)
        fields.update(f"profile.{name}" for name in item["profile"])
        fields.update(key for key in ("consents", "interests", "intents") if key in item)
    return projection


def _profiles(
    session: Session, covered: dict[int, list[str]], params: dict[str, Any], query: Executable
) -> dict[int, dict[str, Any]]:
    if not covered:
        return {}
    profiles = {}
    for row in session.execute(query, params):
        if row[0] not in covered:
            continue
        values = {
            "given_name": row[1],
            "family_name": row[2],
            "language": row[3],
            "email": row[4],
            "phone": row[5],
            "postal_address": row[6],
        }
        profiles[row[0]] = {name: values[name] or None for name in covered[row[0]]}
    return profiles


def _personalisation(
    session: Session,
    brand_id: int,
    account_ids: list[int],
    now: datetime,
    in_page: Select[int] | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[dict[int, list[str]], dict[int, list[dict[str, Any]]]]:
    if not account_ids:
        return {}, {}
    interests: dict[int, list[str]] = {account_id: [] for account_id in account_ids}
    wanted = in_page if in_page is not None and len(account_ids) > 50 else account_ids
    for account_id, key in session.execute(
        select(DeclaredInterest.account_id, Topic.key)
        .join(Topic, Topic.id == DeclaredInterest.topic_id)
        .where(
            DeclaredInterest.account_id.in_(wanted),
            Topic.brand_id == brand_id,
            Topic.retired.is_(False),
        )
        .order_by(DeclaredInterest.account_id, Topic.position, Topic.id),
        params or {},
    ):
        if account_id in interests:
            interests[account_id].append(key)
    intents: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for intent in session.scalars(
        select(Intent)
        .join(IntentBrand, IntentBrand.intent_id == Intent.id)
        .where(
            Intent.account_id.in_(wanted),
            IntentBrand.brand_id == brand_id,
            Intent.withdrawn_at.is_(None),
            Intent.ends_on >= now.date(),
        )
        .order_by(Intent.account_id, Intent.created_at.desc(), Intent.id.desc()),
        params or {},
    ):
        if intent.account_id not in interests:
            continue
        budget = None
        if intent.budget_min is not None or intent.budget_max is not None:
            budget = {
                "min": intent.budget_min,
                "max": intent.budget_max,
                "currency": intent.currency,
            }
        intents[intent.account_id].append(
            {
                "category": intent.category,
                "summary": intent.summary,
                "horizon_months": intent.horizon_months,
                "budget": budget,
                "ends_on": intent.ends_on.isoformat(),
            }
        )
    return interests, intents


@dataclass
class Changes:
    items: list[dict[str, Any]]
    next_cursor: int


def changes_page(session: Session, brand_id: int, after: int, limit: int) -> Changes:
    """Entries of the brand's feed after ``after``, in order (a prefix of what committed)."""
    rows = session.execute(
        select(
            BrandChange.seq,
            BrandChange.kind,
            BrandChange.pairwise_id,
            BrandChange.occurred_at,
            BrandChange.data,
        )
        .where(BrandChange.brand_id == brand_id, BrandChange.seq > after)
        .order_by(BrandChange.seq)
        .limit(limit)
    ).all()
    items = [change_document(*row) for row in rows]
    return Changes(items, rows[-1][0] if rows else after)
