"""Consent statistics per brand and purpose, and their charts (pygal, server-side SVG).

Each chart is an ``<img>`` (a ``data:`` URI: the page's Content-Security-Policy allows
``data:`` images, and an SVG image runs no script) with the same numbers in a table for
screen readers. Periods are days or ISO weeks (Monday), in UTC.
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pygal  # type: ignore[import-untyped]
from pygal.style import Style  # type: ignore[import-untyped]
from sqlalchemy import ColumnElement, and_, func, literal_column, select, text
from sqlalchemy.orm import Session

from vrm_portal.brands.models import Brand
from vrm_portal.consent.models import (
    Action,
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    PendingConfirmation,
    Purpose,
)
from vrm_portal.privacy_office.models import method_predicate
from vrm_portal.requests.models import DataRequest, RequestKind, RequestStatus

# pygal appends an import hook for its ``pygal.maps.*`` plugins (unused here) to
# ``sys.meta_path``; it has no ``find_spec``, so every later failed import (an optional
# dependency probed by another library) raised an ImportWarning. Take it out again.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

#: Up to this many days a chart shows days, beyond it weeks.
DAILY_UP_TO = 62
_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#52606d",
    colors=("#1d6f42", "#b3261e", "#1f4e8c", "#8a5a00"),
    font_family="system-ui, sans-serif",
)


@dataclass(frozen=True)
class StatsQuery:
    since: date
    #: Inclusive last day.
    until: date
    brand: str | None = None
    purpose: str | None = None

    @property
    def weekly(self) -> bool:
        return (self.until - self.since).days > DAILY_UP_TO

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, datetime.min.time()).replace(tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.until + timedelta(days=1), datetime.min.time()).replace(
            tzinfo=UTC
        )


@dataclass(frozen=True)
class PeriodRow:
    period: date
    given: int
    withdrawn: int


@dataclass(frozen=True)
class PurposeRow:
    brand: str
    purpose: str
    given_now: int
    renewals_pending: int


@dataclass
class Stats:
    query: StatsQuery
    periods: list[PeriodRow] = field(default_factory=list)
    purposes: list[PurposeRow] = field(default_factory=list)
    expiries: int = 0
    gpc_withdrawals: int = 0
    confirmations_asked: int = 0
    confirmations_done: int = 0
    erasures: int = 0

    @property
    def confirmation_rate(self) -> int | None:
        """Double opt-in: confirmed grants per confirmation email, in percent."""
        if not self.confirmations_asked:
            return None
        return round(100 * self.confirmations_done / self.confirmations_asked)


def _bucket(session: Session, weekly: bool) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        unit = "week" if weekly else "day"
        return func.date(
            func.date_trunc(unit, literal_column("consent_events.occurred_at AT TIME ZONE 'UTC'"))
        )
    if weekly:
        # SQLite: the Monday on or before the day.
        return func.date(ConsentEvent.occurred_at, "-6 days", "weekday 1")
    return func.date(ConsentEvent.occurred_at)


def _event_scope(query: StatsQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        ConsentEvent.occurred_at >= query.start,
        ConsentEvent.occurred_at < query.end,
    ]
    if query.brand:
        where.append(ConsentEvent.brand_slug == query.brand)
    if query.purpose:
        where.append(ConsentEvent.purpose_key == query.purpose)
    return where


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def compute(session: Session, query: StatsQuery) -> Stats:
    stats = Stats(query)
    scope = _event_scope(query)
    bucket = _bucket(session, query.weekly).label("period")
    counted: dict[date, dict[str, int]] = {}
    for period, action, number in session.execute(
        select(bucket, ConsentEvent.action, func.count())
        .where(*scope, ConsentEvent.action.in_([Action.GRANTED.value, Action.WITHDRAWN.value]))
        .group_by(bucket, ConsentEvent.action)
    ):
        counted.setdefault(_as_date(period), {})[action] = int(number)
    stats.periods = [
        PeriodRow(day, row.get(Action.GRANTED.value, 0), row.get(Action.WITHDRAWN.value, 0))
        for day, row in sorted(counted.items())
    ]
    stats.expiries = int(
        session.scalar(
            select(func.count())
            .select_from(ConsentEvent)
            .where(*scope, ConsentEvent.action == Action.EXPIRED.value)
        )
        or 0
    )
    # A GPC signal only ever withdraws (``honour_gpc``), and the email link only ever
    # confirms a grant (``confirm``): the method alone counts them.
    stats.gpc_withdrawals = _method_count(session, query, "gpc-signal")
    stats.confirmations_done = _method_count(session, query, "email-confirmation")
    asked = (
        select(func.count())
        .select_from(PendingConfirmation)
        .join(Purpose, Purpose.id == PendingConfirmation.purpose_id)
        .join(Brand, Brand.id == Purpose.brand_id)
        .where(
            PendingConfirmation.created_at >= query.start,
            PendingConfirmation.created_at < query.end,
        )
    )
    if query.brand:
        asked = asked.where(Brand.slug == query.brand)
    if query.purpose:
        asked = asked.where(Purpose.key == query.purpose)
    stats.confirmations_asked = int(session.scalar(asked) or 0)
    stats.erasures = int(
        session.scalar(
            select(func.count())
            .select_from(DataRequest)
            .where(
                DataRequest.kind == RequestKind.ERASURE.value,
                DataRequest.status == RequestStatus.COMPLETED.value,
                DataRequest.completed_at >= query.start,
                DataRequest.completed_at < query.end,
            )
        )
        or 0
    )
    stats.purposes = _purposes(session, query)
    return stats


def _method_count(session: Session, query: StatsQuery, method: str) -> int:
    """Events of one collection method in the range (read from its partial index alone).

    Without a brand, the method's partial index (ordered by time) holds exactly the rows
    to look at; SQLite's planner would rather test the ``LIKE`` on every body of the
    range, so the ordered subquery leads it to that index. (PostgreSQL finds the index
    alone, and the ORDER BY would only slow it down.)
    """
    inner = select(ConsentEvent.seq).where(
        *_event_scope(query),
        text(method_predicate(method)),
    )
    if not query.brand and session.get_bind().dialect.name == "sqlite":
        inner = inner.order_by(ConsentEvent.occurred_at, ConsentEvent.seq)
    return int(session.scalar(select(func.count()).select_from(inner.subquery())) or 0)


def _purposes(session: Session, query: StatsQuery) -> list[PurposeRow]:
    granted = ConsentState.status == ConsentStatus.GRANTED.value
    outdated = and_(granted, ConsentState.version < Purpose.current_version)
    rows = (
        select(
            Brand.slug,
            Purpose.key,
            func.count(ConsentState.id).filter(granted),
            func.count(ConsentState.id).filter(outdated),
        )
        .select_from(Purpose)
        .join(Brand, Brand.id == Purpose.brand_id)
        .outerjoin(ConsentState, ConsentState.purpose_id == Purpose.id)
        .group_by(Brand.slug, Purpose.key)
        .order_by(Brand.slug, Purpose.key)
    )
    if query.brand:
        rows = rows.where(Brand.slug == query.brand)
    if query.purpose:
        rows = rows.where(Purpose.key == query.purpose)
    return [PurposeRow(b, p, int(g), int(o)) for b, p, g, o in session.execute(rows)]


def _data_uri(chart: Any) -> str:
    svg: bytes = chart.render()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def _chart(kind: Any, title: str, **options: Any) -> Any:
    return kind(
        title=title,
        style=_STYLE,
        js=[],
        disable_xml_declaration=False,
        show_legend=True,
        legend_at_bottom=True,
        width=800,
        height=360,
        x_label_rotation=30,
        truncate_label=-1,
        **options,
    )


def changes_chart(stats: Stats, title: str, given: str, withdrawn: str) -> str:
    chart = _chart(pygal.Bar, title, show_minor_x_labels=False)
    labels = [row.period.isoformat() for row in stats.periods]
    chart.x_labels = labels
    chart.x_labels_major = labels[:: max(1, len(labels) // 12)] if labels else []
    chart.add(given, [row.given for row in stats.periods])
    chart.add(withdrawn, [row.withdrawn for row in stats.periods])
    return _data_uri(chart)


def purposes_chart(stats: Stats, title: str, given: str, pending: str) -> str:
    chart = _chart(pygal.HorizontalBar, title)
    chart.x_labels = [f"{row.brand} / {row.purpose}" for row in stats.purposes]
    chart.add(given, [row.given_now for row in stats.purposes])
    chart.add(pending, [row.renewals_pending for row in stats.purposes])
    return _data_uri(chart)
