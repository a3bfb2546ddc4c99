"""Renewal notices: a new text version of a purpose tells its brand, through the change
feed (and so its webhooks), whose consents stopped counting: ``consent.needs_renewal``.

``publish_version`` enqueues one ``consent.renewal_notices`` job in the publishing
transaction, so a rolled-back publish leaves neither a job nor an entry. The job walks
the purpose's consent states granted to an older version, in ``id`` order, one batch
per short transaction, and writes one entry per consumer known to the brand (a
``BrandRelationship`` gives the pairwise id). Each batch:

1. locks the ledger head, the first lock of the project's order (then the job's row,
   then the brand's row through ``feed.append_changes``). No consent change runs between
   reading a state and writing its notice: a consumer who renews meanwhile either
   committed first (the state is current, no notice) or commits after (their
   ``consent.granted`` follows the notice in the feed);
2. checks that this run still owns the job (a worker that lost its lease stops before
   writing anything), with the job's row locked until the batch commits;
3. stops when a newer version was published since: that version's own job notifies
   every state older than it, from the start. Entries already written stay true: each
   names the version agreed to and the version that replaced it;
4. writes the batch's entries in a few statements (``feed.append_changes`` also queues
   the webhook deliveries) and commits them with the cursor (``ctx.checkpoint``), so a
   rerun after a crash resumes after the last committed batch: no entry twice, none
   missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from vrm_portal.brands import feed
from vrm_portal.brands.models import BrandRelationship, ChangeKind
from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentState, ConsentStatus, Purpose, PurposeVersion
from vrm_portal.jobs.models import Job, JobStatus
from vrm_portal.jobs.registry import JobContext, PermanentJobError, handler
from vrm_portal.jobs.service import enqueue

JOB_KIND = "consent.renewal_notices"
#: Consent states per transaction: the ledger head (every consent change) waits at most
#: one batch.
BATCH_SIZE = 1000


class LostJob(RuntimeError):
    """Another worker took this job over (our lease ended): stop before writing."""


def queue_renewal_notices(session: Session, purpose: Purpose, version: int) -> str:
    """Enqueue, in ``session``'s transaction, the notices for ``purpose``'s new ``version``."""
    return enqueue(session, JOB_KIND, {"purpose_id": purpose.id, "version": version})


def _due(purpose_id: int, brand_id: int, version: int) -> Select[int, int, str]:
    """States of consumers known to the brand, granted to a text older than ``version``."""
    return (
        select(ConsentState.id, ConsentState.version, BrandRelationship.pairwise_id)
        .join(
            BrandRelationship,
            and_(
                BrandRelationship.account_id == ConsentState.account_id,
                BrandRelationship.brand_id == brand_id,
            ),
        )
        .where(
            ConsentState.purpose_id == purpose_id,
            ConsentState.status == ConsentStatus.GRANTED.value,
            ConsentState.version < version,
        )
    )


def _count(session: Session, purpose_id: int, brand_id: int, version: int) -> int:
    due = _due(purpose_id, brand_id, version).subquery()
    return int(session.execute(select(func.count()).select_from(due)).scalar_one())


def count_due(session: Session, purpose: Purpose, version: int) -> int:
    """How many consumers are due a renewal notice for ``purpose``'s ``version``."""
    return _count(session, purpose.id, purpose.brand_id, version)


class _Target(NamedTuple):
    key: str
    brand_id: int
    published_at: datetime


def _target(session: Session, purpose_id: int, version: int) -> _Target:
    row = session.execute(
        select(Purpose.key, Purpose.brand_id, PurposeVersion.published_at)
        .join(PurposeVersion, PurposeVersion.purpose_id == Purpose.id)
        .where(Purpose.id == purpose_id, PurposeVersion.version == version)
    ).one_or_none()
    if row is None:
        raise PermanentJobError(f"purpose {purpose_id} has no version {version}")
    return _Target(row.key, row.brand_id, row.published_at)


def _hold_job(ctx: JobContext) -> None:
    """Lock the job's row until the batch commits, and check this run still owns it."""
    owner = ctx.session.execute(
        select(Job.status, Job.attempts).where(Job.id == ctx.job_id).with_for_update()
    ).one_or_none()
    if owner is None or owner.status != JobStatus.RUNNING.value or owner.attempts != ctx.attempt:
        raise LostJob(f"job {ctx.job_id} is no longer run by attempt {ctx.attempt}")


def _data(purpose_key: str, agreed: int, current: int) -> dict[str, Any]:
    """The entry's ``data``: like the other ``consent.*`` entries, the purpose key and the
    ``version`` the consumer agreed to; and the ``current_version`` that replaced it."""
    return {"purpose": purpose_key, "version": agreed, "current_version": current}


def _integer(payload: dict[str, Any], name: str, default: int | None = None) -> int:
    value = payload.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PermanentJobError(f"payload {name!r} must be a non-negative integer: {value!r}")
    return value


@handler(JOB_KIND)
def renewal_notices(ctx: JobContext) -> dict[str, Any]:
    """Write ``consent.needs_renewal`` for each consumer whose consent the new version of
    the purpose left behind (payload: ``purpose_id``, ``version``; optional ``batch``)."""
    session = ctx.session
    purpose_id = _integer(ctx.payload, "purpose_id")
    version = _integer(ctx.payload, "version")
    batch = max(1, _integer(ctx.payload, "batch", BATCH_SIZE))
    target = _target(session, purpose_id, version)
    after = _integer(ctx.payload, "after", 0)
    done = _integer(ctx.payload, "done", 0)
    if "total" in ctx.payload:
        total = _integer(ctx.payload, "total")
    else:
        total = _count(session, purpose_id, target.brand_id, version)
        ctx.checkpoint(done, total, {"total": total})
    due = _due(purpose_id, target.brand_id, version)
    while True:
        ledger.lock_head(session)
        _hold_job(ctx)
        current = session.scalar(select(Purpose.current_version).where(Purpose.id == purpose_id))
        if current is not None and current > version:
            session.rollback()
            return {"notified": done, "total": total, "superseded_by": current}
        rows = session.execute(
            due.where(ConsentState.id > after).order_by(ConsentState.id).limit(batch)
        ).all()
        feed.append_changes(
            session,
            target.brand_id,
            ChangeKind.CONSENT_NEEDS_RENEWAL,
            target.published_at,
            [
                (pairwise_id, _data(target.key, agreed, version))
                for _state_id, agreed, pairwise_id in rows
            ],
        )
        if rows:
            after = rows[-1][0]
            done += len(rows)
            ctx.checkpoint(done, total, {"after": after, "done": done})
        if len(rows) < batch:
            return {"notified": done, "total": total}
