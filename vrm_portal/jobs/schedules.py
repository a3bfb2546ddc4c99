"""The scheduled jobs that replace cron: the same code as the CLI commands.

Each runs as a ``jobs`` row (so a failure is visible and retried) enqueued by the
engine's periodic tasks (``jobs/engine.py``): consent expiry (daily), due erasures
(hourly), the webhook outbox (every minute, besides the nudge after each change) and
the attention reminders (daily). Each is idempotent: what was done is no longer due.
"""

from __future__ import annotations

from typing import Any

from vrm_portal.clock import utcnow
from vrm_portal.jobs.registry import JobContext, handler


def expire_consents(ctx: JobContext) -> int:
    """Record ``expired`` for every consent past its validity, a batch per transaction."""
    from vrm_portal.consent import service
    from vrm_portal.consent.signing import current_notary

    total = 0
    notary = current_notary()
    while True:
        count = service.expire_due(ctx.session, notary, now=utcnow())
        total += count
        ctx.checkpoint(total, None, {})
        if count == 0:
            return total


@handler("schedule.expire_consents", max_attempts=3)
def expire_consents_job(ctx: JobContext) -> dict[str, Any]:
    return {"expired": expire_consents(ctx)}


@handler("schedule.process_erasures", max_attempts=3)
def process_erasures_job(ctx: JobContext) -> dict[str, Any]:
    """Erase the accounts whose grace period is over (one transaction each)."""
    from vrm_portal.consent.signing import current_notary
    from vrm_portal.requests import emails, erasure

    run = erasure.process_due(
        ctx.session, current_notary(), utcnow(), limit=1000, farewell=emails.send_farewell
    )
    if run.failed:
        # The failed accounts are counted on their requests and retried next hour; the
        # job itself says so, so the consoles show it.
        raise RuntimeError(f"{len(run.failed)} erasure(s) failed: requests {run.failed}")
    return {"erased": len(run.erased)}


@handler("schedule.deliver_webhooks", max_attempts=1)
def deliver_webhooks_job(ctx: JobContext) -> dict[str, Any]:
    """The minute's sweep of the webhook outbox (retries that came due)."""
    from vrm_portal.webhooks.jobs import deliver_pass

    ctx.session.rollback()
    summary = deliver_pass()
    return {"delivered": summary.delivered, "retrying": summary.retrying, "failed": summary.failed}
