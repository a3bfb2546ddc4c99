"""Console pages that run things: ledger verifications and the data-request queue."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.history.models import LookupKind
from vrm_portal.privacy_office import queue, verification
from vrm_portal.privacy_office.access import record_lookup
from vrm_portal.privacy_office.forms import ConfirmForm, OfflineRequestForm, ReasonForm
from vrm_portal.privacy_office.models import VerificationRun
from vrm_portal.requests import export_formats
from vrm_portal.requests.export import begin_snapshot, build_export
from vrm_portal.requests.models import ReceivedVia, RequestKind, RequestStatus
from vrm_portal.web import form_status, page_arg, public_url

KIND_FILTERS = {k.value for k in RequestKind}
STATUS_FILTERS = {s.value for s in RequestStatus}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/verification", "verification", verification_page, methods=["GET"])
    bp.add_url_rule("/verification", "start_verification", start_verification, methods=["POST"])
    bp.add_url_rule("/verification/<int:run_id>", "run", run_page, methods=["GET"])
    bp.add_url_rule(
        "/verification/<int:run_id>/progress.json", "run_progress", run_progress, methods=["GET"]
    )
    bp.add_url_rule("/requests", "requests", requests_page, methods=["GET"])
    bp.add_url_rule("/requests/new", "record_request", record_request, methods=["GET", "POST"])
    bp.add_url_rule("/requests/<uuid:reference>", "request_detail", request_detail, methods=["GET"])
    bp.add_url_rule(
        "/requests/<uuid:reference>/retry", "retry_erasure", retry_erasure, methods=["POST"]
    )
    bp.add_url_rule(
        "/requests/<uuid:reference>/export.json",
        "request_export",
        request_export,
        methods=["POST"],
    )


def _staff() -> Account:
    account: Account = current_user.account
    return account


# ---- verification ----------------------------------------------------------------------


def verification_page() -> ResponseReturnValue:
    before = request.args.get("before", "")
    before_id = int(before) if before.isascii() and before.isdigit() and len(before) < 12 else None
    runs = verification.recent_runs(db.session, limit=20, before_id=before_id)
    more = len(runs) == 20 and runs[-1].id > 1
    return render_template(
        "privacy_office/verification.html",
        runs=runs,
        running=verification.running_run(db.session),
        can_start=_staff().staff_role == StaffRole.DPO.value,
        form=ConfirmForm(),
        progress_of=verification.progress_of,
        older_url=url_for(".verification", before=runs[-1].id) if more else None,
    )


def start_verification() -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        run = verification.start_run(db.session, _staff())
    except verification.RunAlreadyGoing as exc:
        flash(_("A verification is already running: here it is."), "info")
        return redirect(url_for(".run", run_id=exc.run.id))
    db.commit()
    flash(_("The verification has started."), "success")
    return redirect(url_for(".run", run_id=run.id))


def _run_or_404(run_id: int) -> VerificationRun:
    run = db.session.get(VerificationRun, run_id)
    if run is None:
        abort(404)
    return run


def run_page(run_id: int) -> ResponseReturnValue:
    run = _run_or_404(run_id)
    return render_template(
        "privacy_office/run.html",
        run=run,
        progress=verification.progress_of(run),
        progress_url=url_for(".run_progress", run_id=run.id),
    )


def run_progress(run_id: int) -> ResponseReturnValue:
    run = _run_or_404(run_id)
    response = jsonify(verification.progress_of(run).as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


# ---- data-request queue ----------------------------------------------------------------


def requests_page() -> ResponseReturnValue:
    kind = request.args.get("type") or None
    status = request.args.get("status") or None
    notices = []
    if kind is not None and kind not in KIND_FILTERS:
        notices.append(_("Unknown request type: showing every type."))
        kind = None
    if status is not None and status not in STATUS_FILTERS:
        notices.append(_("Unknown status: showing every status."))
        status = None
    today = utcnow().date()
    listing = queue.list_requests(
        db.session, kind=kind, status=status, today=today, page=page_arg()
    )
    args: dict[str, Any] = {k: v for k, v in (("type", kind), ("status", status)) if v}
    return render_template(
        "privacy_office/requests.html",
        listing=listing,
        counts=queue.counts(db.session, today),
        kind=kind,
        status=status,
        notices=notices,
        retry_form=ConfirmForm(),
        prev_url=url_for(".requests", page=listing.page - 1, **args) if listing.page > 1 else None,
        next_url=url_for(".requests", page=listing.page + 1, **args)
        if listing.page < listing.pages
        else None,
    )


def record_request() -> ResponseReturnValue:
    form = OfflineRequestForm()
    if request.method == "GET" and not form.received_on.data:
        form.received_on.data = utcnow().date()
    if form.validate_on_submit():
        try:
            created = queue.record_offline_request(
                db.session,
                _staff(),
                email=form.email.data,
                kind=RequestKind(form.kind.data),
                received_via=ReceivedVia(form.received_via.data),
                received_on=form.received_on.data,
                reason=form.reason.data,
            )
        except queue.NoSuchConsumer as exc:
            form.email.errors.append(str(exc))
        except queue.QueueError as exc:
            form.form_errors.append(str(exc))
        else:
            db.commit()
            if created.kind == RequestKind.ERASURE.value:
                flash(
                    _("Request recorded: the erasure runs now and the consumer is told by email."),
                    "success",
                )
            else:
                flash(
                    _("Request recorded: the consumer is told by email that their data is ready."),
                    "success",
                )
            return redirect(url_for(".request_detail", reference=created.reference))
    return (
        render_template("privacy_office/record_request.html", form=form),
        form_status(form),
    )


def _request_or_404(reference: object) -> queue.QueueItem:
    found = queue.request_by_reference(db.session, str(reference))
    if found is None:
        abort(404)
    return queue.item_of(found, utcnow().date())


def request_detail(reference: object) -> ResponseReturnValue:
    item = _request_or_404(reference)
    return render_template(
        "privacy_office/request.html",
        item=item,
        retry_form=ConfirmForm(),
        export_form=ReasonForm(),
        can_export=item.request.account_id is not None,
    )


def retry_erasure(reference: object) -> ResponseReturnValue:
    item = _request_or_404(reference)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        queue.retry_erasure(db.session, _staff(), item.request.id)
    except queue.NotRetryable as exc:
        flash(str(exc), "error")
        return redirect(url_for(".request_detail", reference=item.request.reference))
    db.commit()
    flash(_("The erasure was handed to the worker again."), "success")
    return redirect(url_for(".request_detail", reference=item.request.reference))


def request_export(reference: object) -> ResponseReturnValue:
    """The consumer's export (JSON), for a privacy officer answering a request on paper."""
    item = _request_or_404(reference)
    form = ReasonForm()
    account = db.session.get(Account, item.request.account_id) if item.request.account_id else None
    if account is None:
        abort(404)
    if not form.validate_on_submit():
        return (
            render_template(
                "privacy_office/request.html",
                item=item,
                retry_form=ConfirmForm(),
                export_form=form,
                can_export=True,
            ),
            422,
        )
    record_lookup(
        db.session,
        _staff(),
        kind=LookupKind.EXPORT,
        reason=form.reason.data,
        subjects=[account.subject_key],
        detail={"request": item.request.reference, "format": "json"},
        action="data_request.export_downloaded",
        object_type="data_request",
        object_id=item.request.reference,
    )
    db.commit()
    now = utcnow()
    locale = str(get_locale() or "en")
    schema_url = public_url("export.versioned_schema", version=export_formats.FORMAT_VERSION)
    write = functools.partial(export_formats.json_chunks, schema_url=schema_url)

    def stream() -> Iterator[bytes]:
        session = db.session
        begin_snapshot(session)
        yield from write(build_export(session, account, now, locale))

    response = Response(stream_with_context(stream()), mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="export-{item.request.reference}.json"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response
