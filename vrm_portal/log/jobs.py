"""``schedule.checkpoint``: sign a new checkpoint when the log has grown (every few
minutes, ``VRM_SCHEDULE_CHECKPOINT``). A tree that no longer extends the last checkpoint
fails the job at once and alerts every data protection officer by email."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.clock import utcnow
from vrm_portal.jobs.registry import JobContext, PermanentJobError, handler
from vrm_portal.log import service
from vrm_portal.log.signing import log_signer
from vrm_portal.mail import send_later


@handler("schedule.checkpoint", max_attempts=3)
def checkpoint_job(ctx: JobContext) -> dict[str, Any]:
    try:
        signed = service.sign_checkpoint(ctx.session, log_signer(), utcnow())
    except service.LogInconsistent as exc:
        ctx.session.rollback()
        alert_privacy_office(ctx, str(exc))
        raise PermanentJobError(f"checkpoint refused: {exc}") from exc
    if signed is None:
        return {"signed": False}
    return {
        "signed": True,
        "size": signed.checkpoint.size,
        "brands_told": signed.brands_told,
    }


def alert_privacy_office(ctx: JobContext, problem: str) -> None:
    """Email every DPO (committed now: the job itself is about to fail)."""
    officers = ctx.session.execute(
        select(Account.email, Account.locale, Account.time_zone).where(
            Account.staff_role == StaffRole.DPO.value
        )
    ).all()
    for email, locale, time_zone in officers:
        send_later(
            email,
            _l("The public consent log failed its consistency check"),
            "log_alert",
            locale=locale,
            time_zone=time_zone,
            problem=problem,
            at=utcnow(),
        )
    ctx.session.commit()
