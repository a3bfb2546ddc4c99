"""A brand's webhook endpoints: add, test ping, rotate the signing secret, disable, and
the delivery log with "redeliver".

Endpoint management goes through ``webhooks.service``; the ping is sent with no database
transaction open (``webhooks.ping``), so a dead receiver costs the page its short timeout
and never a lock or a 500. Every action is written to the staff audit trail.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from vrm_portal.audit.service import record
from vrm_portal.brand_space import service
from vrm_portal.brand_space.access import actor, brand_or_404, duplicate_response
from vrm_portal.brand_space.blueprint import bp
from vrm_portal.brand_space.forms import ActionForm, ConfirmedActionForm, NewEndpointForm
from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.web import MAX_PATH_INT, form_status
from vrm_portal.webhooks import ping
from vrm_portal.webhooks import service as webhooks
from vrm_portal.webhooks.models import WebhookEndpoint


def _endpoint_or_404(brand: Brand, endpoint_id: int) -> WebhookEndpoint:
    try:
        return webhooks.find_endpoint(db.session, brand, endpoint_id)
    except webhooks.UnknownEndpoint:
        abort(404)


def _endpoint_state(endpoint: WebhookEndpoint) -> dict[str, object]:
    """What the audit trail keeps of an endpoint (never its signing keys)."""
    return {
        "url": endpoint.url,
        "disabled_at": endpoint.disabled_at,
        "previous_one_signs_until": endpoint.previous_secret_expires_at,
    }


def url_problem(error: webhooks.WebhookError) -> str:
    """The refusal of an endpoint address, in the reader's language."""
    if isinstance(error, webhooks.UnsupportedScheme):
        if current_app.config["WEBHOOK_ALLOW_LOOPBACK_HTTP"]:
            return str(
                _(
                    "The address must start with https:// (http:// only to 127.0.0.1, ::1 or "
                    "localhost, on a development portal)."
                )
            )
        return str(_("The address must start with https://."))
    if isinstance(error, webhooks.MissingHost):
        return str(_("The address has no host name, e.g. https://hooks.example.com/vrm."))
    if isinstance(error, webhooks.CredentialsInUrl):
        return str(
            _(
                "The address must not hold a user name or password: deliveries are "
                "authenticated by their signature."
            )
        )
    if isinstance(error, webhooks.FragmentInUrl):
        return str(_("The address must not end with a #fragment: it is never sent to the server."))
    if isinstance(error, webhooks.UrlTooLong):
        return str(
            _("The address can have at most %(max)d characters.", max=webhooks.MAX_URL_LENGTH)
        )
    if isinstance(error, webhooks.DuplicateEndpoint):
        return str(
            _(
                "This brand already has an active endpoint at this address (#%(id)d).",
                id=error.endpoint_id,
            )
        )
    return str(_("This is not a valid web address: check it for spaces or stray characters."))


@bp.route("/<slug>/webhooks", methods=["GET", "POST"])
def endpoints(slug: str) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    form = NewEndpointForm()
    if form.validate_on_submit():
        now = utcnow()
        try:
            url = webhooks.validate_url(
                form.url.data,
                allow_loopback_http=current_app.config["WEBHOOK_ALLOW_LOOPBACK_HTTP"],
            )
        except webhooks.WebhookError as exc:
            form.url.errors.append(url_problem(exc))
        else:
            try:
                submission = service.claim_submission(
                    db.session, form.submission.data, "webhook.created", now
                )
            except service.AlreadySubmitted as exc:
                return duplicate_response(brand, exc.submission)
            try:
                endpoint, secret = webhooks.register_endpoint(
                    db.session,
                    brand,
                    url,
                    allow_loopback_http=current_app.config["WEBHOOK_ALLOW_LOOPBACK_HTTP"],
                    now=now,
                )
            except webhooks.WebhookError as exc:
                # Nothing was done: the same form, corrected, may be sent again.
                db.session.delete(submission)
                db.session.flush()
                form.url.errors.append(url_problem(exc))
            else:
                service.complete_submission(db.session, submission, endpoint.id)
                record(
                    db.session,
                    actor=actor(),
                    action="webhook.created",
                    object_type="webhook_endpoint",
                    object_id=endpoint.id,
                    after=_endpoint_state(endpoint) | {"brand": brand.slug},
                )
                return render_template(
                    "brand_space/endpoint_secret.html",
                    brand=brand,
                    hook=endpoint,
                    secret=secret,
                    rotated=False,
                )
    return render_template(
        "brand_space/endpoints.html",
        brand=brand,
        overviews=webhooks.list_endpoints(db.session, brand),
        form=form,
    ), form_status(form)


def _before_arg() -> int | None:
    raw = request.args.get("before", "")
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_PATH_INT:
        return int(raw)
    return None


def _endpoint_page(
    brand: Brand,
    endpoint: WebhookEndpoint,
    *,
    forms: dict[str, ActionForm] | None = None,
) -> ResponseReturnValue:
    forms = forms or {}
    ping_form = forms.get("ping", ActionForm(prefix="ping"))
    rotate_form = forms.get("rotate", ActionForm(prefix="rotate"))
    disable_form = forms.get("disable", ConfirmedActionForm(prefix="disable"))
    status = max(form_status(form) for form in (ping_form, rotate_form, disable_form))
    before = _before_arg()
    return render_template(
        "brand_space/endpoint.html",
        brand=brand,
        hook=endpoint,
        now=utcnow(),
        pings=ping.recent_pings(db.session, endpoint),
        log=webhooks.delivery_log(db.session, endpoint, before=before),
        first_page=before is None,
        ping_form=ping_form,
        rotate_form=rotate_form,
        disable_form=disable_form,
        redeliver_form=ActionForm(prefix="redeliver"),
        new_submission_key=service.new_submission_key,
        overlap_hours=current_app.config["WEBHOOK_SECRET_OVERLAP_HOURS"],
    ), status


@bp.get("/<slug>/webhooks/<int:endpoint_id>")
def endpoint(slug: str, endpoint_id: int) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    return _endpoint_page(brand, _endpoint_or_404(brand, endpoint_id))


def _back(brand: Brand, endpoint: WebhookEndpoint) -> ResponseReturnValue:
    return redirect(url_for(".endpoint", slug=brand.slug, endpoint_id=endpoint.id), 303)


@bp.post("/<slug>/webhooks/<int:endpoint_id>/ping")
def ping_endpoint(slug: str, endpoint_id: int) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    endpoint = _endpoint_or_404(brand, endpoint_id)
    form = ActionForm(prefix="ping")
    if not form.validate_on_submit():
        return _endpoint_page(brand, endpoint, forms={"ping": form})
    if endpoint.disabled_at is not None:
        flash(_("This endpoint is disabled: nothing is sent to it."), "error")
        return _back(brand, endpoint)
    now = utcnow()
    try:
        submission = service.claim_submission(
            db.session, form.submission.data, "webhook.pinged", now
        )
    except service.AlreadySubmitted as exc:
        return duplicate_response(brand, exc.submission)
    service.complete_submission(db.session, submission, endpoint.id)
    url, keys, endpoint_pk = endpoint.url, endpoint.signing_secrets(now), endpoint.id
    # Commit what is decided (the form key) and hold no transaction during the request.
    db.commit()
    answer = ping.send(url, keys, endpoint_pk, now, timeout=ping.PING_TIMEOUT)
    endpoint = _endpoint_or_404(brand, endpoint_pk)
    ping.record(db.session, endpoint, answer)
    record(
        db.session,
        actor=actor(),
        action="webhook.pinged",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        after={
            "status_code": answer.status_code,
            "error": answer.error,
            "duration_ms": answer.duration_ms,
        },
    )
    if answer.ok:
        flash(
            _(
                "Ping answered: HTTP %(status)d in %(ms)d ms.",
                status=answer.status_code or 0,
                ms=answer.duration_ms,
            ),
            "success",
        )
    elif answer.status_code is not None:
        flash(
            _(
                "The endpoint answered HTTP %(status)d in %(ms)d ms; a delivery needs a 2xx "
                "answer. %(detail)s",
                status=answer.status_code,
                ms=answer.duration_ms,
                detail=answer.error,
            ),
            "error",
        )
    else:
        flash(
            _("The ping got no answer (%(detail)s).", detail=answer.error),
            "error",
        )
    return _back(brand, endpoint)


@bp.post("/<slug>/webhooks/<int:endpoint_id>/rotate")
def rotate_endpoint(slug: str, endpoint_id: int) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    endpoint = _endpoint_or_404(brand, endpoint_id)
    form = ActionForm(prefix="rotate")
    if not form.validate_on_submit():
        return _endpoint_page(brand, endpoint, forms={"rotate": form})
    now = utcnow()
    try:
        submission = service.claim_submission(
            db.session, form.submission.data, "webhook.secret_rotated", now
        )
    except service.AlreadySubmitted as exc:
        return duplicate_response(brand, exc.submission)
    service.complete_submission(db.session, submission, endpoint.id)
    before = _endpoint_state(endpoint)
    overlap = timedelta(hours=current_app.config["WEBHOOK_SECRET_OVERLAP_HOURS"])
    try:
        secret = webhooks.rotate_secret(db.session, endpoint, now, overlap)
    except webhooks.EndpointDisabled:
        flash(_("This endpoint is disabled: its secret cannot be rotated."), "error")
        return _back(brand, endpoint)
    record(
        db.session,
        actor=actor(),
        action="webhook.secret_rotated",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        before=before,
        after=_endpoint_state(endpoint),
    )
    return render_template(
        "brand_space/endpoint_secret.html",
        brand=brand,
        hook=endpoint,
        secret=secret,
        rotated=True,
    )


@bp.post("/<slug>/webhooks/<int:endpoint_id>/disable")
def disable_endpoint(slug: str, endpoint_id: int) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    endpoint = _endpoint_or_404(brand, endpoint_id)
    form = ConfirmedActionForm(prefix="disable")
    if not form.validate_on_submit():
        return _endpoint_page(brand, endpoint, forms={"disable": form})
    now = utcnow()
    try:
        submission = service.claim_submission(
            db.session, form.submission.data, "webhook.disabled", now
        )
    except service.AlreadySubmitted as exc:
        return duplicate_response(brand, exc.submission)
    service.complete_submission(db.session, submission, endpoint.id)
    if endpoint.disabled_at is not None:
        flash(_("This endpoint was already disabled."), "info")
        return _back(brand, endpoint)
    before = _endpoint_state(endpoint)
    webhooks.disable_endpoint(db.session, brand, endpoint.id, now)
    record(
        db.session,
        actor=actor(),
        action="webhook.disabled",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        before=before,
        after=_endpoint_state(endpoint),
    )
    flash(_("Endpoint disabled: no change is sent to it any more."), "success")
    return _back(brand, endpoint)


@bp.post("/<slug>/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver")
def redeliver(slug: str, endpoint_id: int, delivery_id: int) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    endpoint = _endpoint_or_404(brand, endpoint_id)
    form = ActionForm(prefix="redeliver")
    if not form.validate_on_submit():
        return _endpoint_page(brand, endpoint, forms={"redeliver": form})
    now = utcnow()
    try:
        submission = service.claim_submission(
            db.session, form.submission.data, "webhook.redelivered", now
        )
    except service.AlreadySubmitted as exc:
        return duplicate_response(brand, exc.submission)
    service.complete_submission(db.session, submission, endpoint.id)
    try:
        delivery = webhooks.redeliver(db.session, endpoint, delivery_id, now)
    except webhooks.UnknownDelivery:
        abort(404)
    except webhooks.EndpointDisabled:
        flash(_("This endpoint is disabled: nothing is sent to it."), "error")
        return _back(brand, endpoint)
    except webhooks.AlreadyQueued:
        flash(_("This delivery is already waiting to be sent."), "info")
        return _back(brand, endpoint)
    record(
        db.session,
        actor=actor(),
        action="webhook.redelivered",
        object_type="webhook_delivery",
        object_id=delivery.id,
        after={"endpoint": endpoint.id, "change_seq": delivery.change_seq},
    )
    flash(
        _("Delivery #%(id)d is queued again and will be sent in a moment.", id=delivery.id),
        "success",
    )
    return _back(brand, endpoint)
