"""Tracking data requests: exports as they are delivered, erasures from request to end.

The erasure itself (what is deleted, in which order, in one transaction) is in
``requests.erasure``; this module only keeps the requests' status and dates.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.requests.models import (
    DataRequest,
    ExportFormat,
    RequestKind,
    RequestStatus,
)

#: How long a scheduled erasure waits, so that a change of mind costs nothing.
GRACE_PERIOD = timedelta(days=30)


class RequestError(Exception):
    """A data request that cannot be made or changed as asked."""


class ErasureAlreadyPending(RequestError):
    def __init__(self, request: DataRequest) -> None:
        super().__init__(f"an erasure is already scheduled for {request.due_at}")
        self.request = request


class NoPendingErasure(RequestError):
    """There is no scheduled erasure to cancel."""


def record_export(
    session: Session, account: Account, export_format: ExportFormat, now: datetime
) -> DataRequest:
    """Note that the consumer downloaded their data in ``export_format`` (GDPR art. 15/20).

    An export is delivered at once (it streams), so it is recorded as completed.
    """
    request = DataRequest(
        account_id=account.id,
        subject_key=account.subject_key,
        kind=RequestKind.EXPORT.value,
        status=RequestStatus.COMPLETED.value,
        format=export_format.value,
        requested_at=now,
        completed_at=now,
        detail={},
    )
    session.add(request)
    session.flush()
    return request


#: ``DataRequest.detail`` of the download of a proof bundle (``log/bundle.py``).
PROOF_BUNDLE_DETAIL = {"download": "proof-bundle"}


def record_proof_bundle(session: Session, account: Account, now: datetime) -> DataRequest:
    """Note that the consumer downloaded the proof bundle of their consents.

    Recorded as an export with no ``format``: the formats' check constraint (and the
    export's JSON Schema) know json, csv and html only; ``detail`` says what it was.
    """
    request = DataRequest(
        account_id=account.id,
        subject_key=account.subject_key,
        kind=RequestKind.EXPORT.value,
        status=RequestStatus.COMPLETED.value,
        format=None,
        requested_at=now,
        completed_at=now,
        detail=dict(PROOF_BUNDLE_DETAIL),
    )
    session.add(request)
    session.flush()
    return request


def pending_erasure(session: Session, account_id: int) -> DataRequest | None:
    """The account's scheduled erasure, if there is one."""
    return session.scalar(
        select(DataRequest).where(
            DataRequest.account_id == account_id,
            DataRequest.kind == RequestKind.ERASURE.value,
            DataRequest.status == RequestStatus.SCHEDULED.value,
        )
    )


def schedule_erasure(
    session: Session, account: Account, now: datetime, *, grace: timedelta = GRACE_PERIOD
) -> DataRequest:
    """Schedule the account's erasure for ``now + grace``.

    Raises ``ErasureAlreadyPending`` when one is already scheduled; the partial unique
    index settles a race between two requests the same way.
    """
    existing = pending_erasure(session, account.id)
    if existing is not None:
        raise ErasureAlreadyPending(existing)
    request = DataRequest(
        account_id=account.id,
        subject_key=account.subject_key,
        kind=RequestKind.ERASURE.value,
        status=RequestStatus.SCHEDULED.value,
        requested_at=now,
        due_at=now + grace,
        detail={},
    )
    try:
        with session.begin_nested():
            session.add(request)
            session.flush()
    except IntegrityError:
        raced = pending_erasure(session, account.id)
        if raced is None:
            raise
        raise ErasureAlreadyPending(raced) from None
    return request


def cancel_erasure(session: Session, account: Account, now: datetime) -> DataRequest:
    """Call off the scheduled erasure; ``NoPendingErasure`` when there is none."""
    request = pending_erasure(session, account.id)
    if request is None:
        raise NoPendingErasure()
    request.status = RequestStatus.CANCELLED.value
    request.cancelled_at = now
    session.flush()
    return request


def requests_of(
    session: Session, account_id: int, *, page: int = 1, per_page: int = 20
) -> tuple[list[DataRequest], int]:
    """One page of the account's data requests, newest first, and their total."""
    mine = DataRequest.account_id == account_id
    total = session.scalar(select(func.count()).select_from(DataRequest).where(mine)) or 0
    rows = session.scalars(
        select(DataRequest)
        .where(mine)
        .order_by(DataRequest.requested_at.desc(), DataRequest.id.desc())
        .offset((max(page, 1) - 1) * per_page)
        .limit(per_page)
    )
    return list(rows), total
