"""The console's background job: the staff invitation email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask_babel import lazy_gettext as _l

from vrm_portal.admin import staff
from vrm_portal.admin.models import StaffInvitation
from vrm_portal.clock import utcnow
from vrm_portal.jobs.registry import JobContext, handler
from vrm_portal.mail import render_email
from vrm_portal.web import public_url


@handler(staff.INVITATION_JOB, retry_delay=timedelta(seconds=20))
def invitation_email(ctx: JobContext) -> dict[str, Any]:
    """Mail the invitation's link, with a secret made now (a retry makes another: only the
    last one mailed works). Nothing is sent for a used or expired invitation."""
    invitation = ctx.session.get(StaffInvitation, ctx.payload.get("invitation_id"))
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= utcnow():
        return {"sent": False}
    secret = staff.issue_link_secret(ctx.session, invitation)
    hours = int((invitation.expires_at - utcnow()).total_seconds() // 3600)
    ctx.send(
        render_email(
            invitation.email,
            _l("You are invited to the VRM Portal staff"),
            "staff_invitation",
            locale=None,
            time_zone=None,
            message_id=ctx.job_id,
            link=public_url("staff_invitation.accept", token=secret),
            role=invitation.role,
            expires_hours=hours,
        )
    )
    return {"sent": True}
