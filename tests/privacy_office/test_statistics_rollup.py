"""The statistics page's rollup: the same figures as counting the events themselves."""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentEvent
from vrm_portal.privacy_office import rollup, stats
from vrm_portal.privacy_office.models import ConsentDailyCount

BRANDS = ("maison-berlingot", "aurore-automobiles", "third-brand")
PURPOSES = ("sms-offers", "analytics", "email-offers")
KINDS = (
    ("granted", "portal"),
    ("granted", "email-confirmation"),
    ("granted", "import"),
    ("withdrawn", "portal"),
    ("withdrawn", "gpc-signal"),
    ("withdrawn", "erasure"),
    ("withdrawn", "staff"),
    ("expired", "expiry"),
)
#: Monday 2 March 2026; the events spread over 20 weeks from there.
ORIGIN = datetime(2026, 3, 2, tzinfo=UTC)


def _add_events(session: Session, count: int, rng: random.Random, *, skip: int = 0) -> None:
    """``count`` events after the ledger's last (``skip`` seq numbers left out first),
    many of them a moment either side of midnight UTC."""
    last = int(session.scalar(select(func.max(ConsentEvent.seq))) or 0) + skip
    for seq in range(last + 1, last + count + 1):
        action, method = rng.choice(KINDS)
        day = ORIGIN + timedelta(days=rng.randrange(140))
        occurred = rng.choice(
            (
                day + timedelta(seconds=rng.randrange(86_400)),
                day - timedelta(microseconds=1),
                day,
            )
        )
        event = ledger.NewEvent(
            subject_key=hashlib.sha256(f"s{rng.randrange(40)}".encode()).hexdigest(),
            brand=rng.choice(BRANDS),
            purpose=rng.choice(PURPOSES),
            purpose_version=1,
            text_hash="ab" * 32,
            action=action,
            method=method,
            actor="subject",
            language="en",
            occurred_at=occurred,
        )
        event_id = str(uuid.uuid4())
        body = ledger.canonical_json(event.document(seq, event_id, b"\0" * 32))
        session.add(
            ConsentEvent(
                seq=seq,
                event_id=event_id,
                subject_key=event.subject_key,
                brand_slug=event.brand,
                purpose_key=event.purpose,
                action=action,
                occurred_at=occurred,
                body=body,
                hash=hashlib.sha256(body.encode()).digest(),
            )
        )
    session.flush()


QUERIES = [
    # 12 months (weekly), the range starting on a Thursday.
    stats.StatsQuery(date(2025, 12, 4), date(2026, 12, 3)),
    stats.StatsQuery(date(2025, 12, 4), date(2026, 12, 3), brand="maison-berlingot"),
    stats.StatsQuery(date(2025, 12, 4), date(2026, 12, 3), purpose="analytics"),
    # Daily, cutting into the history on both sides (mid-week).
    stats.StatsQuery(date(2026, 4, 8), date(2026, 5, 20)),
    stats.StatsQuery(
        date(2026, 4, 8), date(2026, 5, 20), brand="aurore-automobiles", purpose="sms-offers"
    ),
    # Weekly, from a Wednesday to a Tuesday inside the history.
    stats.StatsQuery(date(2026, 3, 11), date(2026, 6, 30), brand="third-brand"),
    # One day; and a range with no event.
    stats.StatsQuery(date(2026, 4, 1), date(2026, 4, 1)),
    stats.StatsQuery(date(2024, 1, 1), date(2024, 12, 31)),
]


def _assert_same_figures(session: Session) -> None:
    for query in QUERIES:
        scanned = stats.compute(session, query, from_events=True)
        added_up = stats.compute(session, query)
        assert added_up == scanned, query


def test_the_rollup_gives_the_figures_of_the_full_scan(db_session):
    rng = random.Random(17)
    _add_events(db_session, 900, rng)
    # The scheduled job's way: batches.
    assert rollup.fold(db_session, 400) == 400
    assert rollup.fold(db_session, 400) == 400
    db_session.commit()
    # A tail not folded yet: the page folds it before adding up.
    _add_events(db_session, 150, rng)
    db_session.commit()
    wide = stats.compute(db_session, QUERIES[0], from_events=True)
    assert sum(row.given + row.withdrawn for row in wide.periods) > 0
    assert wide.gpc_withdrawals > 0
    assert wide.confirmations_done > 0
    assert wide.expiries > 0
    assert len({row.period.weekday() for row in wide.periods}) == 1
    _assert_same_figures(db_session)
    assert rollup.folded_up_to(db_session) == 1050
    # Every event counted once, whatever the path.
    total = db_session.scalar(select(func.sum(ConsentDailyCount.count)))
    assert total == 1050
    assert rollup.fold(db_session) == 0
    # More events, again a tail.
    _add_events(db_session, 60, rng)
    db_session.commit()
    _assert_same_figures(db_session)
    assert rollup.folded_up_to(db_session) == 1110


def test_a_day_is_a_utc_day(db_session):
    rng = random.Random(3)
    _add_events(db_session, 200, rng)
    db_session.commit()
    rollup.fold(db_session)
    for row in db_session.scalars(select(ConsentDailyCount)):
        events = db_session.scalar(
            select(func.count())
            .select_from(ConsentEvent)
            .where(
                ConsentEvent.brand_slug == row.brand_slug,
                ConsentEvent.purpose_key == row.purpose_key,
                ConsentEvent.action == row.action,
                ConsentEvent.body.like(f'%"method":"{row.method}"%'),
                ConsentEvent.occurred_at >= datetime.combine(row.day, datetime.min.time(), UTC),
                ConsentEvent.occurred_at
                < datetime.combine(row.day + timedelta(days=1), datetime.min.time(), UTC),
            )
        )
        assert events == row.count, row.day


def test_a_gap_in_the_ledger_folds_nothing_and_the_page_counts_the_events(db_session):
    rng = random.Random(5)
    _add_events(db_session, 100, rng)
    db_session.commit()
    assert rollup.fold(db_session) == 100
    db_session.commit()
    _add_events(db_session, 20, rng, skip=1)
    db_session.commit()
    with pytest.raises(rollup.LedgerGap, match="20 visible of 21"):
        rollup.fold(db_session)
    db_session.rollback()
    assert rollup.folded_up_to(db_session) == 100
    _assert_same_figures(db_session)
    assert rollup.folded_up_to(db_session) == 100


def test_the_scheduled_rollup_folds_the_new_events(app, db_session, monkeypatch):
    from vrm_portal.jobs import engine
    from vrm_portal.jobs.models import Job

    assert engine.SCHEDULES["STATISTICS_ROLLUP"] == rollup.SCHEDULED_KIND
    assert app.config["SCHEDULE_STATISTICS_ROLLUP"] == "*/10 * * * *"
    _add_events(db_session, 250, random.Random(11))
    db_session.commit()
    monkeypatch.setattr(rollup, "JOB_BATCH", 100)
    with app.app_context():
        from vrm_portal.extensions import db
        from vrm_portal.jobs.service import enqueue

        job_id = enqueue(db.session, rollup.SCHEDULED_KIND, {})
        db.session.commit()
    job = db_session.get(Job, job_id)
    assert job is not None
    assert job.status == "done"
    assert job.result == {"folded": 250, "up_to": 250}
    assert rollup.folded_up_to(db_session) == 250
    assert db_session.scalar(select(func.sum(ConsentDailyCount.count))) == 250
