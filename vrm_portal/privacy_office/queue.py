"""The data-request queue: every export and erasure, with its one-month deadline.

GDPR art. 12(3): the controller answers "within one month of receipt of the request".
A month is counted as the regulation counts periods (Regulation 1182/71, art. 3(2)(c)):
it ends on the same day of the next month, or on that month's last day when it has no
such day (31 January → 28 or 29 February).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.audit import service as audit
from vrm_portal.clock import utcnow
from vrm_portal.history.models import LookupKind
from vrm_portal.jobs.service import enqueue
from vrm_portal.mail import send_later
from vrm_portal.privacy_office.access import record_lookup
from vrm_portal.requests.models import (
    DataRequest,
    ExportFormat,
    ReceivedVia,
    RequestKind,
    RequestStatus,
)
from vrm_portal.requests.service import ErasureAlreadyPending, schedule_erasure
from vrm_portal.web import public_url

ERASURE_JOB = "schedule.process_erasures"
OPEN_STATUSES = (RequestStatus.SCHEDULED.value,)
PER_PAGE = 25


class QueueError(Exception):
    """A queue action that cannot be done as asked (the message says why)."""


class NoSuchConsumer(QueueError):
    pass


class NotRetryable(QueueError):
    pass


def add_one_month(day: date) -> date:
    """``day`` plus one calendar month, clamped to the last day of the month."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def due_date(received: datetime) -> date:
    return add_one_month(received.astimezone(UTC).date())


@dataclass(frozen=True)
class QueueItem:
    request: DataRequest
    due: date
    days_left: int
    overdue: bool
    failed_attempts: int
    last_error: str | None

    @property
    def open(self) -> bool:
        return self.request.status in OPEN_STATUSES


def item_of(request: DataRequest, today: date) -> QueueItem:
    due = due_date(request.requested_at)
    is_open = request.status in OPEN_STATUSES
    detail = request.detail if isinstance(request.detail, dict) else {}
    attempts = detail.get("failed_attempts", 0)
    error = detail.get("last_error")
    return QueueItem(
        request=request,
        due=due,
        days_left=(due - today).days,
        overdue=is_open and today > due,
        failed_attempts=attempts if isinstance(attempts, int) else 0,
        last_error=str(error) if error else None,
    )


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    page: int
    pages: int
    total: int


def list_requests(
    session: Session,
    *,
    kind: str | None,
    status: str | None,
    today: date,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> QueuePage:
    """Requests, open ones first (oldest first: the nearest deadline), then the rest."""
    where = []
    if kind is not None:
        where.append(DataRequest.kind == kind)
    if status is not None:
        where.append(DataRequest.status == status)
    total = int(session.scalar(select(func.count()).select_from(DataRequest).where(*where)) or 0)
    pages = max(1, -(-total // per_page))
    number = page if 1 <= page <= pages else 1
    is_open = DataRequest.status.in_(OPEN_STATUSES)
    rows = session.scalars(
        select(DataRequest)
        .where(*where)
        .order_by(is_open.desc(), DataRequest.requested_at, DataRequest.id)
        .offset((number - 1) * per_page)
        .limit(per_page)
    )
    return QueuePage([item_of(r, today) for r in rows], number, pages, total)


@dataclass(frozen=True)
class QueueCounts:
    by_status: dict[str, int]
    overdue: int
    failing: int


def counts(session: Session, today: date) -> QueueCounts:
    by_status = {
        status: int(n)
        for status, n in session.execute(
            select(DataRequest.status, func.count()).group_by(DataRequest.status)
        )
    }
    open_rows = session.scalars(
        select(DataRequest).where(DataRequest.status.in_(OPEN_STATUSES))
    ).all()
    items = [item_of(r, today) for r in open_rows]
    return QueueCounts(
        by_status=by_status,
        overdue=sum(item.overdue for item in items),
        failing=sum(item.failed_attempts > 0 for item in items),
    )


def retry_erasure(session: Session, staff: Account, request_id: int) -> DataRequest:
    """Run the erasure worker now for a scheduled erasure that failed before."""
    request = session.get(DataRequest, request_id)
    if (
        request is None
        or request.kind != RequestKind.ERASURE.value
        or request.status != RequestStatus.SCHEDULED.value
    ):
        raise NotRetryable(str(_l("Only a scheduled erasure can be retried.")))
    now = utcnow()
    if request.due_at is None or request.due_at > now:
        request.due_at = now
    job_id = enqueue(session, ERASURE_JOB, {})
    audit.record(
        session,
        actor=staff,
        action="data_request.erasure_retried",
        object_type="data_request",
        object_id=request.reference,
        after={"job_id": job_id, "failed_attempts": request.detail.get("failed_attempts", 0)},
    )
    session.flush()
    return request


def record_offline_request(
    session: Session,
    staff: Account,
    *,
    email: str,
    kind: RequestKind,
    received_via: ReceivedVia,
    received_on: date,
    reason: str,
) -> DataRequest:
    """Record a request received by post or email for the consumer with this address,
    and run it: an export is ready at once, an erasure is scheduled now (no grace
    period: the person asked in writing) and handed to the erasure worker. The consumer
    is told by email."""
    account = session.scalar(select(Account).where(Account.email == email.strip().lower()))
    if account is None or account.staff_role is not None:
        raise NoSuchConsumer(str(_l("No consumer account has this email address.")))
    now = utcnow()
    if received_on > now.date():
        raise QueueError(str(_l("The date received cannot be in the future.")))
    received = now if received_on == now.date() else datetime.combine(received_on, time(), UTC)
    if kind is RequestKind.ERASURE:
        try:
            request = schedule_erasure(session, account, now, grace=timedelta(0))
        except ErasureAlreadyPending as exc:
            raise QueueError(str(_l("An erasure is already scheduled for this consumer."))) from exc
        request.requested_at = received
        enqueue(session, ERASURE_JOB, {})
    else:
        request = DataRequest(
            account_id=account.id,
            subject_key=account.subject_key,
            kind=RequestKind.EXPORT.value,
            status=RequestStatus.COMPLETED.value,
            format=ExportFormat.JSON.value,
            requested_at=received,
            completed_at=now,
            detail={},
        )
        session.add(request)
    request.received_via = received_via.value
    request.recorded_by_email = staff.email
    request.recorded_reason = reason
    session.flush()
    record_lookup(
        session,
        staff,
        kind=LookupKind.REQUEST,
        reason=reason,
        subjects=[account.subject_key],
        detail={"request": request.reference, "type": kind.value, "via": received_via.value},
        action="data_request.recorded",
        object_type="data_request",
        object_id=request.reference,
    )
    send_later(
        account.email,
        _l("We have received your data request"),
        "office_request_recorded",
        locale=account.locale,
        time_zone=account.time_zone,
        account_id=None,
        kind=kind.value,
        via=received_via.value,
        received=received,
        reference=request.reference,
        export_link=public_url("export.page"),
    )
    return request


def request_by_reference(session: Session, reference: str) -> DataRequest | None:
    return session.scalar(select(DataRequest).where(DataRequest.reference == reference))
