"""Console pages of operations: failed background jobs, and the staff audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from vrm_portal.admin.blueprint import bp, staff_member
from vrm_portal.admin.forms import AuditSearchForm, EmptyForm
from vrm_portal.audit import service as audit
from vrm_portal.extensions import db
from vrm_portal.jobs import service as jobs
from vrm_portal.jobs.models import Job

PAGE_SIZE = 50


@bp.get("/jobs")
def failed_jobs() -> ResponseReturnValue:
    return render_template(
        "admin/jobs.html",
        jobs=jobs.failed_jobs(db.session, limit=200),
        counts=jobs.counts(db.session),
        form=EmptyForm(),
    )


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str) -> ResponseReturnValue:
    if len(job_id) > 64 or db.session.get(Job, job_id) is None:
        abort(404)
    if EmptyForm().validate_on_submit():
        if jobs.retry(db.session, job_id):
            audit.record(
                db.session,
                actor=staff_member(),
                action="job.retried",
                object_type="job",
                object_id=job_id,
            )
            flash(_("Job %(id)s queued again.", id=job_id), "success")
        else:
            flash(_("Job %(id)s is not failed (any more): nothing to retry.", id=job_id), "info")
    return redirect(url_for("admin.failed_jobs"))


def _day(raw: str | None) -> datetime | None:
    """A YYYY-MM-DD date as midnight UTC; ValueError on anything else."""
    if not raw:
        return None
    return datetime.strptime(raw.strip(), "%Y-%m-%d").replace(tzinfo=UTC)


def _filters(form: AuditSearchForm) -> audit.Filters | None:
    """The search's filters, or None (with the form's errors set) when a date is wrong."""
    valid = form.validate()
    since = until = None
    try:
        since = _day(form.since.data)
    except ValueError:
        form.since.errors = [_("Enter a date like 2026-12-31.")]
        valid = False
    try:
        end = _day(form.until.data)
        until = end + timedelta(days=1) if end else None
    except ValueError:
        form.until.errors = [_("Enter a date like 2026-12-31.")]
        valid = False
    if since and until and since >= until:
        form.until.errors = [_("The end date is before the start date.")]
        valid = False
    if not valid:
        return None
    return audit.Filters(
        actor_email=(form.actor.data or "").strip() or None,
        action=(form.action.data or "").strip() or None,
        object_type=(form.object_type.data or "").strip() or None,
        object_id=(form.object_id.data or "").strip() or None,
        since=since,
        until=until,
    )


@bp.get("/audit", endpoint="audit")
def audit_trail() -> ResponseReturnValue:
    form = AuditSearchForm(request.args)
    filters = _filters(form)
    before_raw = request.args.get("before", "")
    before = (
        int(before_raw)
        if before_raw.isascii() and before_raw.isdigit() and len(before_raw) < 19
        else None
    )
    page = audit.search(db.session, filters, before_id=before, limit=PAGE_SIZE) if filters else None
    query = {k: v for k, v in request.args.items() if k != "before" and v}
    return render_template(
        "admin/audit.html", form=form, page=page, query=query
    ), 200 if filters else 422


@bp.get("/audit/export.csv", endpoint="audit_export")
def audit_export() -> ResponseReturnValue:
    form = AuditSearchForm(request.args)
    filters = _filters(form)
    if filters is None:
        abort(400)
    audit.record(
        db.session,
        actor=staff_member(),
        action="audit.exported",
        object_type="audit_trail",
        after={k: v for k, v in request.args.items() if v},
    )
    db.commit()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        stream_with_context(audit.export_csv(db.session, filters)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="staff-audit-{stamp}.csv"'},
    )
