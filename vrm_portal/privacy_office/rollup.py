"""The statistics rollup: the consent ledger counted per UTC day, brand, purpose, action
and collection method (``consent_daily_counts``), kept up to date incrementally.

The ledger is append-only and its ``seq`` has no gap, so one number says what is counted:
``statistics_rollup.last_seq``. A fold counts the events after it (an index range on the
primary key), adds them to the daily rows and moves the watermark, in one transaction:
the counts are exact at every commit, whoever folds. The scheduled job
(``schedule.statistics_rollup``, ``VRM_SCHEDULE_STATISTICS_ROLLUP``) folds in batches;
the statistics page folds the remaining tail right before it adds the rows up, so the
page counts every event integrated so far.

Two folds never count the same events: each locks the watermark row first (``FOR
UPDATE`` on PostgreSQL; SQLite transactions start with ``BEGIN IMMEDIATE``) and reads it
only then.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal_column, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vrm_portal.clock import utcnow
from vrm_portal.consent.models import ConsentEvent
from vrm_portal.jobs.registry import JobContext, handler
from vrm_portal.privacy_office.models import ConsentDailyCount, StatisticsRollup

SCHEDULED_KIND = "schedule.statistics_rollup"
#: Events per transaction of the scheduled job (the first run folds the whole ledger).
JOB_BATCH = 200_000
#: After folding this many events, the job refreshes the table's planner statistics (the
#: first run fills it: PostgreSQL would plan the page's sum for a nearly empty table).
ANALYZE_AFTER = 100_000
_ROW = 1
_KEY = ("day", "brand_slug", "purpose_key", "action", "method")


class LedgerGap(RuntimeError):
    """The events after the watermark are not all visible (seq would have a gap)."""


def _day_and_method(dialect: str) -> tuple[Any, Any]:
    """The event's UTC day and its body's ``method``, as SQL (the body is canonical JSON
    with the method at the top level, which the console's ``LIKE`` tests rely on too)."""
    day: Any
    method: Any
    if dialect == "postgresql":
        day = func.date(literal_column("consent_events.occurred_at AT TIME ZONE 'UTC'"))
        method = literal_column("CAST(consent_events.body AS json) ->> 'method'")
    else:
        day = func.date(ConsentEvent.occurred_at)
        method = func.json_extract(ConsentEvent.body, "$.method")
    return day.label("day"), func.coalesce(method, "").label("method")


def _lock_watermark(session: Session) -> int:
    last = session.scalar(
        select(StatisticsRollup.last_seq).where(StatisticsRollup.id == _ROW).with_for_update()
    )
    if last is None:
        session.add(StatisticsRollup(id=_ROW, last_seq=0, updated_at=utcnow()))
        session.flush()
        return 0
    return int(last)


def fold(session: Session, batch: int | None = None) -> int:
    """Fold the events after the watermark (at most ``batch`` of them) into the daily
    counts, in the session's transaction; returns how many were folded (0: up to date).

    Raises ``LedgerGap`` (nothing written) if fewer events than their seq range are
    visible.
    """
    last = _lock_watermark(session)
    head = int(session.scalar(select(func.max(ConsentEvent.seq))) or 0)
    upto = head if batch is None else min(head, last + batch)
    if upto <= last:
        return 0
    visible = int(
        session.scalar(
            select(func.count())
            .select_from(ConsentEvent)
            .where(ConsentEvent.seq > last, ConsentEvent.seq <= upto)
        )
        or 0
    )
    if visible != upto - last:
        raise LedgerGap(f"events {last + 1}..{upto}: {visible} visible of {upto - last}")
    dialect = session.get_bind().dialect.name
    day, method = _day_and_method(dialect)
    tail = (
        select(
            day,
            ConsentEvent.brand_slug,
            ConsentEvent.purpose_key,
            ConsentEvent.action,
            method,
            func.count(),
        )
        .where(ConsentEvent.seq > last, ConsentEvent.seq <= upto)
        .group_by(day, ConsentEvent.brand_slug, ConsentEvent.purpose_key, ConsentEvent.action)
        .group_by(method)
    )
    # One statement: the groups are added to the rows in the database (the SELECT has a
    # WHERE, as SQLite's upsert after a SELECT needs).
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ConsentDailyCount).from_select([*_KEY, "count"], tail)
    statement = statement.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={"count": ConsentDailyCount.count + statement.excluded["count"]},
    )
    session.execute(statement)
    session.execute(
        update(StatisticsRollup)
        .where(StatisticsRollup.id == _ROW)
        .values(last_seq=upto, updated_at=utcnow())
    )
    return visible


def analyze(session: Session) -> None:
    """Refresh the planner's statistics of the daily counts."""
    session.execute(text("ANALYZE consent_daily_counts"))


def folded_up_to(session: Session) -> int:
    """The watermark: every event up to this seq is in the daily counts."""
    return int(
        session.scalar(select(StatisticsRollup.last_seq).where(StatisticsRollup.id == _ROW)) or 0
    )


@handler(SCHEDULED_KIND, max_attempts=3)
def statistics_rollup_job(ctx: JobContext) -> dict[str, Any]:
    """Fold the new events, a batch per transaction."""
    total: int = 0
    while True:
        count = fold(ctx.session, JOB_BATCH)
        total += count
        ctx.checkpoint(total, None, {})
        if count < JOB_BATCH:
            if total >= ANALYZE_AFTER:
                analyze(ctx.session)
            return {"folded": total, "up_to": folded_up_to(ctx.session)}
