"""Who may act for which brand, the figures the brand space shows, and one-time form keys.

A brand operator acts for the one brand their account is bound to
(``accounts.staff_brand_id``), an admin for every brand, anybody else for none. The
figures are counts only: the brand space never shows consumer data.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.brand_space.models import FormSubmission
from vrm_portal.brands.models import ApiClient, Brand, BrandChange
from vrm_portal.db import utc_iso
from vrm_portal.history.models import AccessRecord

#: Days of API reads the client page charts.
READ_DAYS = 30


def may_use_brand_space(account: Account | None) -> bool:
    """Admins and brand operators; nobody else ever learns the brand space exists."""
    if account is None or getattr(account, "disabled_at", None) is not None:
        return False
    return account.staff_role == StaffRole.ADMIN or (
        account.staff_role == StaffRole.BRAND_OPERATOR and account.staff_brand_id is not None
    )


def brands_for(session: Session, account: Account) -> list[Brand]:
    """The brands ``account`` may manage, by name."""
    if not may_use_brand_space(account):
        return []
    query = select(Brand).order_by(Brand.name, Brand.id)
    if account.staff_role == StaffRole.BRAND_OPERATOR:
        query = query.where(Brand.id == account.staff_brand_id)
    return list(session.scalars(query))


def brand_for(session: Session, account: Account, slug: str) -> Brand | None:
    """The brand ``slug`` if ``account`` may manage it, else None (unknown or not theirs)."""
    if not may_use_brand_space(account):
        return None
    brand = session.scalar(select(Brand).where(Brand.slug == slug))
    if brand is None:
        return None
    if account.staff_role == StaffRole.BRAND_OPERATOR and brand.id != account.staff_brand_id:
        return None
    return brand


def client_of(session: Session, brand: Brand, client_id: str) -> ApiClient | None:
    """``brand``'s API client ``client_id``; None for another brand's or an unknown one."""
    client = session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    return client if client is not None and client.brand_id == brand.id else None


@dataclass(frozen=True)
class DayReads:
    day: date
    #: Read requests (a page of consumers or of the feed is one).
    requests: int
    #: Consumers or feed entries those requests returned.
    records: int


def daily_reads(
    session: Session,
    today: date,
    *,
    brand: Brand | None = None,
    client: ApiClient | None = None,
    days: int = READ_DAYS,
) -> list[DayReads]:
    """Reads through the API per UTC day, oldest first, ``days`` days up to ``today``
    (days without reads are zeros): of one client, or of all a brand's clients. They
    come from the access records that consumers see on "Who read my data"."""
    first = today - timedelta(days=days - 1)
    day = func.substr(utc_iso(AccessRecord.at), 1, 10)
    query = (
        select(day, func.count(), func.coalesce(func.sum(AccessRecord.count), 0))
        .where(AccessRecord.at >= datetime.combine(first, time.min, tzinfo=UTC))
        .group_by(day)
    )
    if client is not None:
        query = query.where(AccessRecord.client_pk == client.id)
    elif brand is not None:
        query = query.where(AccessRecord.brand_id == brand.id)
    found = {str(key): (int(n), int(total)) for key, n, total in session.execute(query)}
    result = []
    for offset in range(days):
        current = first + timedelta(days=offset)
        requests, records = found.get(current.isoformat(), (0, 0))
        result.append(DayReads(current, requests, records))
    return result


@dataclass(frozen=True)
class FeedStatistics:
    #: Entries in the brand's change feed since it began (its last ``seq``).
    total: int
    #: Entries of the last ``READ_DAYS`` days, by type, most frequent first.
    recent_by_kind: list[tuple[str, int]]
    last_entry_at: datetime | None


def feed_statistics(session: Session, brand: Brand, now: datetime) -> FeedStatistics:
    """How busy ``brand``'s change feed is: counts only, never who."""
    since = now - timedelta(days=READ_DAYS)
    rows = session.execute(
        select(BrandChange.kind, func.count())
        .where(BrandChange.brand_id == brand.id, BrandChange.occurred_at >= since)
        .group_by(BrandChange.kind)
    ).all()
    recent = sorted(((str(kind), int(n)) for kind, n in rows), key=lambda r: (-r[1], r[0]))
    last = session.scalar(
        select(BrandChange.occurred_at)
        .where(BrandChange.brand_id == brand.id)
        .order_by(BrandChange.seq.desc())
        .limit(1)
    )
    return FeedStatistics(brand.feed_seq, recent, last)


# ---- one-time form keys ------------------------------------------------------------


class AlreadySubmitted(Exception):
    """The form was already acted on: ``submission`` says what its first submit did."""

    def __init__(self, submission: FormSubmission) -> None:
        self.submission = submission
        super().__init__(submission.action)


def new_submission_key() -> str:
    return secrets.token_urlsafe(24)


def claim_submission(session: Session, key: str, action: str, now: datetime) -> FormSubmission:
    """Take the form key ``key`` for ``action``, or raise ``AlreadySubmitted``.

    The key is the primary key of its row, so of two submits racing each other the
    second waits for the first's transaction and then fails (in a savepoint, so the
    caller's transaction goes on and can say what happened).
    """
    existing = session.get(FormSubmission, key)
    if existing is not None:
        raise AlreadySubmitted(existing)
    row = FormSubmission(key=key, action=action, object_id="", created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = session.scalar(
            select(FormSubmission)
            .where(FormSubmission.key == key)
            .execution_options(populate_existing=True)
        )
        if existing is None:
            raise
        raise AlreadySubmitted(existing) from None
    return row


def complete_submission(session: Session, submission: FormSubmission, object_id: object) -> None:
    """Note which object the submit acted on, for a later duplicate to link to."""
    submission.object_id = str(object_id)
    session.flush()
