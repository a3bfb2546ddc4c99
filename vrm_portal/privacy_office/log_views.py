"""Console pages over the consent log: search, one event, exports, statistics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from wtforms.fields.choices import SelectChoice

from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import list_brands
from vrm_portal.clock import utcnow
from vrm_portal.consent.signing import receipt_jwks
from vrm_portal.extensions import db
from vrm_portal.history.models import LookupKind
from vrm_portal.privacy_office import events, search, stats
from vrm_portal.privacy_office.access import record_lookup
from vrm_portal.privacy_office.forms import (
    ConfirmForm,
    LogSearchForm,
    ReasonForm,
    StatsForm,
    action_label,
    method_label,
)
from vrm_portal.web import form_status

FILTER_FIELDS = (
    "email",
    "subject",
    "pairwise_id",
    "brand",
    "purpose",
    "version",
    "action",
    "method",
    "since",
    "until",
    "reason",
)
_EXPORTS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "json": ("application/json", "json"),
}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/log", "search", search_page, methods=["GET"])
    bp.add_url_rule("/log/<int(min=1):seq>", "event", event_page, methods=["GET"])
    bp.add_url_rule("/log/export/<name>", "export", export, methods=["POST"])
    bp.add_url_rule("/statistics", "statistics", statistics_page, methods=["GET"])


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _search_form(brands: list[Brand], args: MultiDict[str, str]) -> LogSearchForm:
    form = LogSearchForm(formdata=args)
    form.brand.choices = [SelectChoice("", _("Any brand"))] + [
        SelectChoice(b.slug, b.name) for b in brands
    ]
    return form


def _filters(form: LogSearchForm, brands: list[Brand]) -> search.LogFilters | None:
    """The form's filters, with the email or pairwise id resolved to a subject key;
    None (with the field's error) when one of them names nobody or contradicts another."""
    session = db.session
    if form.brand.data and form.brand.data not in {b.slug for b in brands}:
        form.brand.errors = [_("Choose a brand from the list.")]
        return None
    subject = form.subject.data or None
    brand = form.brand.data or None
    if form.email.data:
        found = search.subject_for_email(session, form.email.data)
        if found is None:
            form.email.errors = [_("No account has this email address.")]
            return None
        if subject is not None and subject != found:
            form.email.errors = [_("This address and the subject key name two people.")]
            return None
        subject = found
    if form.pairwise_id.data:
        pair = search.subject_for_pairwise_id(session, form.pairwise_id.data)
        if pair is None:
            form.pairwise_id.errors = [_("No consumer has this pairwise id.")]
            return None
        if subject is not None and subject != pair[0]:
            form.pairwise_id.errors = [_("This pairwise id and the other filters name two people.")]
            return None
        subject, brand = pair[0], brand or pair[1]
    return search.LogFilters(
        subject_key=subject,
        brand=brand,
        purpose=form.purpose.data or None,
        version=form.version.data,
        action=form.action.data or None,
        method=form.method.data or None,
        since=_utc(form.since.data) if form.since.data else None,
        until=_utc(form.until.data + timedelta(days=1)) if form.until.data else None,
    )


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 18:
        return int(raw)
    return None


def _query_args() -> dict[str, Any]:
    return {key: request.args[key] for key in FILTER_FIELDS if request.args.get(key)}


def search_page() -> ResponseReturnValue:
    brands = list_brands(db.session)
    form = _search_form(brands, request.args)
    submitted = any(request.args.get(key) for key in FILTER_FIELDS)
    page = None
    if submitted and form.validate():
        filters = _filters(form, brands)
        if filters is not None:
            page = search.search(
                db.session,
                filters,
                before=_int_arg("before"),
                after=_int_arg("after"),
                last=request.args.get("last") == "1",
            )
            record_lookup(
                db.session,
                current_user.account,
                kind=LookupKind.SEARCH,
                reason=form.reason.data,
                subjects=search.subjects_on(page) | {filters.subject_key},
                detail={"filters": filters.describe(), "shown": len(page.rows)},
                action="consent_log.searched",
            )
    args = _query_args()
    status = form_status(form) if submitted else 200
    return (
        render_template(
            "privacy_office/search.html",
            form=form,
            page=page,
            args=args,
            export_form=ConfirmForm(),
            action_label=action_label,
            method_label=method_label,
            newest_url=url_for(".search", **args),
            oldest_url=url_for(".search", last=1, **args),
            newer_url=url_for(".search", after=page.newer, **args) if page and page.newer else None,
            older_url=url_for(".search", before=page.older, **args)
            if page and page.older
            else None,
        ),
        status,
    )


def event_page(seq: int) -> ResponseReturnValue:
    form = ReasonForm(formdata=request.args, meta={"csrf": False})
    asked = "reason" in request.args
    if not asked or not form.validate():
        status = 422 if asked else 200
        return render_template("privacy_office/event_reason.html", form=form, seq=seq), status
    proof = events.event_proof(db.session, seq, receipt_jwks())
    if proof is None:
        abort(404)
    record_lookup(
        db.session,
        current_user.account,
        kind=LookupKind.EVENT,
        reason=form.reason.data,
        subjects=[proof.event.subject_key],
        detail={"seq": seq},
        action="consent_event.viewed",
        object_type="consent_event",
        object_id=seq,
    )
    return render_template(
        "privacy_office/event.html",
        proof=proof,
        reason=form.reason.data,
        action_label=action_label,
        method_label=method_label,
    )


def export(name: str) -> ResponseReturnValue:
    if name not in _EXPORTS:
        abort(404)
    confirm = ConfirmForm()
    brands = list_brands(db.session)
    form = _search_form(brands, request.args)
    if not confirm.validate_on_submit() or not form.validate():
        return search_page()
    filters = _filters(form, brands)
    if filters is None:
        return search_page()
    record_lookup(
        db.session,
        current_user.account,
        kind=LookupKind.EXPORT,
        reason=form.reason.data,
        subjects=[filters.subject_key],
        detail={"filters": filters.describe(), "format": name},
        action="consent_log.exported",
    )
    db.commit()
    write = search.export_csv if name == "csv" else search.export_json

    def stream() -> Iterator[bytes]:
        # After the commit above: the read runs in a transaction of its own.
        yield from write(db.session, filters)

    mimetype, extension = _EXPORTS[name]
    response = Response(stream_with_context(stream()), mimetype=mimetype)
    filename = f"consent-log-{utcnow():%Y-%m-%d}.{extension}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def statistics_page() -> ResponseReturnValue:
    brands = list_brands(db.session)
    form = StatsForm(formdata=request.args)
    form.brand.choices = [SelectChoice("", _("All brands"))] + [
        SelectChoice(b.slug, b.name) for b in brands
    ]
    today = utcnow().date()
    if request.args and not form.validate():
        return render_template("privacy_office/statistics.html", form=form, stats=None), 422
    if form.brand.data and form.brand.data not in {b.slug for b in brands}:
        form.brand.errors = [_("Choose a brand from the list.")]
        return render_template("privacy_office/statistics.html", form=form, stats=None), 422
    until = form.until.data or today
    since = form.since.data or (until - timedelta(days=365))
    if since > until:
        form.since.errors = [_("The start date comes after the end date.")]
        return render_template("privacy_office/statistics.html", form=form, stats=None), 422
    query = stats.StatsQuery(
        since=since, until=until, brand=form.brand.data or None, purpose=form.purpose.data or None
    )
    result = stats.compute(db.session, query)
    charts: dict[str, Any] = {}
    if result.periods:
        charts["changes"] = stats.changes_chart(
            result,
            _("Consents given and withdrawn per week")
            if query.weekly
            else _("Consents given and withdrawn per day"),
            _("Given"),
            _("Withdrawn"),
        )
    if result.purposes:
        charts["purposes"] = stats.purposes_chart(
            result, _("Consents standing now, per purpose"), _("Given now"), _("Renewal pending")
        )
    return render_template("privacy_office/statistics.html", form=form, stats=result, charts=charts)
