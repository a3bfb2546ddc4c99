"""One consumer as their brand may see them, read in one statement.

``GET /api/v1/consumers/<id>`` is the brand API's hottest read. The token lookup is one
statement (``oauth.authenticate``); this module reads everything else at once: the
relationship and the account, the consents, the declared interests and the plans, as one
``UNION ALL`` of rows of four kinds laid out on the same columns. Nothing is cached: a
withdrawal committed before the read is seen by it, as is a revoked client's token.

What the brand may see is then chosen exactly as for a page of consumers
(``projection``): profile fields only under the matching channel consents, interests and
plans only under a personalisation consent.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, bindparam, cast, literal_column, null, select, union_all
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.api.projection import Projection, profile_fields
from vrm_portal.brands.models import BrandRelationship
from vrm_portal.consent.models import ConsentState, ConsentStatus, Purpose, PurposeCategory
from vrm_portal.db import utc_iso
from vrm_portal.interests.models import DeclaredInterest, Intent, IntentBrand, Topic

_RELATIONSHIP, _CONSENT, _INTEREST, _INTENT = 0, 1, 2, 3

_BRAND = bindparam("brand_id", type_=Integer)
_PAIRWISE = bindparam("pairwise_id", type_=String)
_NOW = bindparam("now", type_=ConsentState.expires_at.type)
_TODAY = bindparam("today", type_=Intent.ends_on.type)
_NO_INT = cast(null(), Integer)
_NO_TEXT = cast(null(), String)


def _text(value: Any) -> Any:
    return cast(value, String)


def _of_consumer(account_id: Any) -> Any:
    """``account_id`` is the account of the brand's consumer ``pairwise_id``."""
    return account_id.in_(
        select(BrandRelationship.account_id).where(
            BrandRelationship.pairwise_id == _PAIRWISE, BrandRelationship.brand_id == _BRAND
        )
    )


_ROWS = union_all(
    select(
        literal_column(str(_RELATIONSHIP), Integer).label("kind"),
        BrandRelationship.id.label("n1"),
        _NO_INT.label("n2"),
        _NO_INT.label("n3"),
        _NO_INT.label("n4"),
        BrandRelationship.pairwise_id.label("t1"),
        utc_iso(BrandRelationship.created_at).label("t2"),
        _text(Account.given_name).label("t3"),
        _text(Account.family_name).label("t4"),
        _text(Account.locale).label("t5"),
        _text(Account.email).label("t6"),
        _text(Account.phone).label("t7"),
        _text(Account.postal_address).label("t8"),
    )
    .select_from(BrandRelationship)
    .join(Account, Account.id == BrandRelationship.account_id)
    .where(BrandRelationship.pairwise_id == _PAIRWISE, BrandRelationship.brand_id == _BRAND),
    select(
        literal_column(str(_CONSENT), Integer),
        Purpose.position,
        Purpose.id,
        ConsentState.version,
        _NO_INT,
        _text(Purpose.key),
        _text(Purpose.category),
        utc_iso(ConsentState.granted_at),
        utc_iso(ConsentState.expires_at),
        _NO_TEXT,
        _NO_TEXT,
        _NO_TEXT,
        _NO_TEXT,
    )
    .select_from(ConsentState)
    .join(Purpose, Purpose.id == ConsentState.purpose_id)
    .where(
        _of_consumer(ConsentState.account_id),
        Purpose.brand_id == _BRAND,
        ConsentState.status == ConsentStatus.GRANTED.value,
        ConsentState.version == Purpose.current_version,
        ConsentState.expires_at > _NOW,
    ),
    select(
        literal_column(str(_INTEREST), Integer),
        Topic.position,
        Topic.id,
        _NO_INT,
        _NO_INT,
        _text(Topic.key),
        _NO_TEXT,
        _NO_TEXT,
        _NO_TEXT,
        _NO_TEXT,
        _NO_TEXT,
        _NO_TEXT,
        _NO_TEXT,
    )
    .select_from(DeclaredInterest)
    .join(Topic, Topic.id == DeclaredInterest.topic_id)
    .where(
        _of_consumer(DeclaredInterest.account_id),
        Topic.brand_id == _BRAND,
        Topic.retired.is_(False),
    ),
    select(
        literal_column(str(_INTENT), Integer),
        Intent.id,
        Intent.horizon_months,
        Intent.budget_min,
        Intent.budget_max,
        _text(Intent.category),
        _text(Intent.summary),
        _text(Intent.currency),
        _text(Intent.ends_on),
        utc_iso(Intent.created_at),
        _NO_TEXT,
        _NO_TEXT,
        _NO_TEXT,
    )
    .select_from(Intent)
    .join(IntentBrand, IntentBrand.intent_id == Intent.id)
    .where(
        _of_consumer(Intent.account_id),
        IntentBrand.brand_id == _BRAND,
        Intent.withdrawn_at.is_(None),
        Intent.ends_on >= _TODAY,
    ),
)


def consumer(session: Session, brand_id: int, pairwise_id: str, now: datetime) -> Projection:
    """The one consumer the brand knows by ``pairwise_id`` (no items when it does not)."""
    params = {"brand_id": brand_id, "pairwise_id": pairwise_id, "now": now, "today": now.date()}
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(_ROWS, params):
        grouped[row[0]].append(row)
    if not grouped[_RELATIONSHIP]:
        return Projection(items=[])
    (relationship,) = grouped[_RELATIONSHIP]
    consents = sorted(grouped[_CONSENT], key=lambda r: (r.n1, r.n2))
    categories = {r.t2 for r in consents}
    names = ("given_name", "family_name", "language", "email", "phone", "postal_address")
    values = dict(zip(names, relationship[7:13], strict=True))
    item: dict[str, Any] = {
        "consumer_id": relationship.t1,
        "known_since": relationship.t2,
        "consents": [
            {
                "purpose": r.t1,
                "category": r.t2,
                "version": r.n3,
                "granted_at": r.t3,
                "expires_at": r.t4,
            }
            for r in consents
        ],
        "profile": {name: values[name] or None for name in profile_fields(categories)},
    }
    if PurposeCategory.PERSONALISATION.value in categories:
        item["interests"] = [r.t1 for r in sorted(grouped[_INTEREST], key=lambda r: (r.n1, r.n2))]
        intents = sorted(grouped[_INTENT], key=lambda r: (r.t5, r.n1), reverse=True)
        item["intents"] = [_intent(r) for r in intents]
    projection = Projection(items=[item], first_id=relationship.n1, last_id=relationship.n1)
    projection.fields.update(f"profile.{name}" for name in item["profile"])
    projection.fields.update(key for key in ("consents", "interests", "intents") if key in item)
    return projection


def _intent(row: Any) -> dict[str, Any]:
    budget = None
    if row.n3 is not None or row.n4 is not None:
        budget = {"min": row.n3, "max": row.n4, "currency": row.t3}
    return {
        "category": row.t1,
        "summary": row.t2,
        "horizon_months": row.n2,
        "budget": budget,
        "ends_on": row.t4,
    }
