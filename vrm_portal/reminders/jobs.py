"""The daily attention digest: ``schedule.reminders`` plans it, ``reminders.digest`` sends it.

Why two kinds. A handler's emails leave only when it returns, while a long run commits
its work batch by batch (``ctx.checkpoint``) so that progress shows and a rerun resumes.
If the daily job sent the emails itself, a worker killed after a checkpoint would leave
digests recorded but never sent, and a run over many accounts would hold every message
in memory. So the daily job only *plans*:

- It walks the consumers who get a digest today (not staff, confirmed address, setting
  on, at least one item, no digest recorded for today yet) by ascending account id, a
  batch at a time (keyset on the id, kept in the payload as ``after``).
- For each, it inserts the ``ReminderDigest`` row of (account, UTC day) in a savepoint:
  the unique constraint refuses a second one, whichever run (a rerun, a second scheduler,
  a manual run) tries, and the refused account is skipped. Then it queues one
  ``reminders.digest`` job per claimed account, in the same transaction.
- ``ctx.checkpoint`` commits the batch: the digest rows and their jobs together, or
  neither. A rerun after a crash starts after the last committed batch, and the
  pre-check skips anyone already planned, so nobody is planned twice in a day.

``reminders.digest`` sends one email. It reads the account and its items again when it
runs (a consent withdrawn, or the setting turned off, after planning means no email),
and is retried like any job: delivery is at least once, with the job id as Message-ID,
so the rare resend after a crash between the SMTP answer and the commit carries the same
id. At most one digest job exists per account and UTC day, hence one email a day at most.
"""

from __future__ import annotations

from datetime import date
from email.message import EmailMessage
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l

from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.jobs.registry import JobContext, PermanentJobError, handler
from vrm_portal.jobs.service import enqueue
from vrm_portal.mail import render_email
from vrm_portal.reminders import service
from vrm_portal.web import public_url

#: Accounts planned per transaction (``batch_size`` in the payload overrides it).
BATCH_SIZE = 200


def _integer(payload: dict[str, Any], name: str, default: int) -> int:
    value = payload.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PermanentJobError(f"payload {name!r} must be a non-negative integer: {value!r}")
    return value


@handler("schedule.reminders", max_attempts=3)
def plan_digests(ctx: JobContext) -> dict[str, Any]:
    """Plan today's digests: one ``reminders.digest`` job per consumer with something to
    review, in batches of accounts committed one at a time."""
    now = utcnow()
    day = now.date()
    days = int(current_app.config["REMINDER_DAYS"])
    batch_size = max(1, _integer(ctx.payload, "batch_size", BATCH_SIZE))
    after = _integer(ctx.payload, "after", 0)
    planned = _integer(ctx.payload, "planned", 0)
    total = planned + service.count_due(ctx.session, now=now, days=days, day=day)
    while True:
        batch = service.due_batch(
            ctx.session, now=now, days=days, day=day, after=after, limit=batch_size
        )
        if not batch:
            return {"planned": planned}
        # Every claim first (savepoints), then the jobs: see ``claim_digest``.
        claimed = [
            account_id
            for account_id, items in batch
            if service.claim_digest(ctx.session, account_id, day, items)
        ]
        for account_id in claimed:
            enqueue(
                ctx.session, "reminders.digest", {"day": day.isoformat()}, account_id=account_id
            )
        planned += len(claimed)
        after = batch[-1][0]
        ctx.checkpoint(planned, max(total, planned), {"after": after, "planned": planned})


@handler("reminders.digest")
def send_digest(ctx: JobContext) -> dict[str, Any]:
    """Send one account's digest of ``day``, if it still has something to say."""
    try:
        day = date.fromisoformat(str(ctx.payload["day"]))
    except (KeyError, ValueError) as exc:
        raise PermanentJobError(f"payload 'day' must be an ISO date: {exc}") from exc
    account = ctx.session.get(Account, ctx.account_id) if ctx.account_id else None
    if account is None:
        return {"sent": False, "why": "account gone"}
    digest = service.digest_of(ctx.session, account.id, day)
    if digest is None or not service.receives_digest(account):
        return {"sent": False, "why": "not wanted"}
    if service.has_later_digest(ctx.session, account.id, day):
        return {"sent": False, "why": "superseded"}
    items = service.attention_items(
        ctx.session, account, now=utcnow(), days=int(current_app.config["REMINDER_DAYS"])
    )
    digest.items = len(items)
    if not items:
        return {"sent": False, "why": "nothing left"}
    ctx.send(digest_email(account, items, ctx.job_id))
    return {"sent": True, "items": len(items)}


def digest_email(
    account: Account, items: list[service.AttentionItem], message_id: str
) -> EmailMessage:
    """The digest in the account's language, with its one-click off link (RFC 8058)."""
    locale = account.locale or str(current_app.config["BABEL_DEFAULT_LOCALE"])
    off_link = public_url(
        "reminders.off", token=service.off_token(current_app.config["SECRET_KEY"], account)
    )
    brands = [
        {
            "name": group.brand_name,
            "link": public_url("consent.brand", brand_slug=group.brand_slug),
            "items": [
                {
                    "title": item.title(locale),
                    "reason": item.reason.value,
                    "expires_at": item.expires_at,
                }
                for item in group.items
            ],
        }
        for group in service.by_brand(items)
    ]
    message = render_email(
        account.email,
        _l("Your consents: what needs your attention"),
        "attention_digest",
        locale=locale,
        time_zone=account.time_zone,
        message_id=message_id,
        count=len(items),
        brands=brands,
        off_link=off_link,
        settings_link=public_url("reminders.settings"),
    )
    # The URL is one long word: at the default 78 columns the header would be folded into
    # RFC 2047 encoded words, which mail clients do not read as a List-Unsubscribe URL.
    # Lines may be up to 998 characters (RFC 5322), so nothing of this message is folded.
    message.policy = message.policy.clone(max_line_length=998)
    message["List-Unsubscribe"] = f"<{off_link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message
