"""The brand space's front page, a brand's overview, and the brand's API clients.

Thin views: the access rules and figures are in ``service``, the clients' life cycle in
``brands.clients``; every action is written to the staff audit trail. A new secret is
shown once, on the answer to the form that made it, and never again.
"""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from vrm_portal.accounts.models import StaffRole
from vrm_portal.audit.service import record
from vrm_portal.brand_space import service
from vrm_portal.brand_space.access import actor, brand_or_404, duplicate_response
from vrm_portal.brand_space.blueprint import bp
from vrm_portal.brand_space.chart import CHART_CSP, reads_svg
from vrm_portal.brand_space.forms import (
    SCOPE_HINTS,
    ActionForm,
    ConfirmedActionForm,
    NewClientForm,
)
from vrm_portal.brands import clients
from vrm_portal.brands.models import ApiClient, Brand
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.web import form_status
from vrm_portal.webhooks.service import list_endpoints


def _client_or_404(brand: Brand, client_id: str) -> ApiClient:
    client = service.client_of(db.session, brand, client_id)
    if client is None:
        abort(404)
    return client


def _client_state(client: ApiClient) -> dict[str, object]:
    """What the audit trail keeps of a client (never its secret or digest)."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "scopes": client.scopes.split(),
        "revoked_at": client.revoked_at,
        "previous_one_works_until": client.previous_secret_expires_at,
    }


@bp.get("/")
def index() -> ResponseReturnValue:
    """A brand operator's brand; for an admin, the list of brands."""
    account = actor()
    brands = service.brands_for(db.session, account)
    if account.staff_role == StaffRole.BRAND_OPERATOR and len(brands) == 1:
        return redirect(url_for(".overview", slug=brands[0].slug))
    return render_template("brand_space/index.html", brands=brands)


@bp.get("/<slug>/")
def overview(slug: str) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    now = utcnow()
    reads = service.daily_reads(db.session, now.date(), brand=brand)
    return render_template(
        "brand_space/overview.html",
        brand=brand,
        feed=service.feed_statistics(db.session, brand, now),
        reads_requests=sum(day.requests for day in reads),
        reads_records=sum(day.records for day in reads),
        clients=clients.list_clients(db.session, brand),
        endpoints=list_endpoints(db.session, brand),
        days=service.READ_DAYS,
    )


@bp.route("/<slug>/clients", methods=["GET", "POST"], endpoint="clients")
def clients_page(slug: str) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    form = NewClientForm()
    if form.validate_on_submit():
        now = utcnow()
        try:
            submission = service.claim_submission(
                db.session, form.submission.data, "api_client.created", now
            )
        except service.AlreadySubmitted as exc:
            return duplicate_response(brand, exc.submission)
        created = clients.create_client(
            db.session,
            brand,
            clients.parse_scopes(" ".join(form.scopes.data)),
            now,
            form.name.data,
        )
        service.complete_submission(db.session, submission, created.client.client_id)
        record(
            db.session,
            actor=actor(),
            action="api_client.created",
            object_type="api_client",
            object_id=created.client.client_id,
            after=_client_state(created.client) | {"brand": brand.slug},
        )
        return render_template(
            "brand_space/client_secret.html",
            brand=brand,
            client=created.client,
            secret=created.secret,
            rotated=False,
        )
    return _clients_listing(brand, form)


def _clients_listing(brand: Brand, form: NewClientForm) -> ResponseReturnValue:
    return render_template(
        "brand_space/clients.html",
        brand=brand,
        listings=clients.list_clients(db.session, brand),
        form=form,
        scope_hints=SCOPE_HINTS,
    ), form_status(form)


@bp.get("/<slug>/clients/<client_id>")
def client(slug: str, client_id: str) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    row = _client_or_404(brand, client_id)
    return _client_page(brand, row, ActionForm(), ConfirmedActionForm())


def _client_page(
    brand: Brand, row: ApiClient, rotate_form: ActionForm, revoke_form: ConfirmedActionForm
) -> ResponseReturnValue:
    now = utcnow()
    reads = service.daily_reads(db.session, now.date(), client=row)
    listing = next(
        (item for item in clients.list_clients(db.session, brand) if item.client.id == row.id),
        None,
    )
    status = max(form_status(rotate_form), form_status(revoke_form))
    return render_template(
        "brand_space/client.html",
        brand=brand,
        client=row,
        last_used_at=listing.last_used_at if listing else None,
        reads=reads,
        reads_total=sum(day.requests for day in reads),
        now=now,
        grace_hours=current_app.config["CLIENT_SECRET_GRACE_HOURS"],
        rotate_form=rotate_form,
        revoke_form=revoke_form,
        days=service.READ_DAYS,
    ), status


@bp.get("/<slug>/clients/<client_id>/reads.svg")
def client_reads_chart(slug: str, client_id: str) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    row = _client_or_404(brand, client_id)
    reads = service.daily_reads(db.session, utcnow().date(), client=row)
    response = Response(reads_svg(reads, _("Read requests")), mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = CHART_CSP
    return response


@bp.post("/<slug>/clients/<client_id>/rotate")
def rotate_client(slug: str, client_id: str) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    row = _client_or_404(brand, client_id)
    form = ActionForm()
    if not form.validate_on_submit():
        return _client_page(brand, row, form, ConfirmedActionForm())
    now = utcnow()
    try:
        submission = service.claim_submission(
            db.session, form.submission.data, "api_client.secret_rotated", now
        )
    except service.AlreadySubmitted as exc:
        return duplicate_response(brand, exc.submission)
    service.complete_submission(db.session, submission, row.client_id)
    if row.revoked_at is not None:
        flash(_("This client is revoked: its secret cannot be rotated."), "error")
        return redirect(url_for(".client", slug=brand.slug, client_id=row.client_id), 303)
    before = _client_state(row)
    grace = timedelta(hours=current_app.config["CLIENT_SECRET_GRACE_HOURS"])
    secret = clients.rotate_secret(db.session, row, now, grace)
    record(
        db.session,
        actor=actor(),
        action="api_client.secret_rotated",
        object_type="api_client",
        object_id=row.client_id,
        before=before,
        after=_client_state(row),
    )
    return render_template(
        "brand_space/client_secret.html",
        brand=brand,
        client=row,
        secret=secret,
        rotated=True,
    )


@bp.post("/<slug>/clients/<client_id>/revoke")
def revoke_client(slug: str, client_id: str) -> ResponseReturnValue:
    brand = brand_or_404(slug)
    row = _client_or_404(brand, client_id)
    form = ConfirmedActionForm()
    if not form.validate_on_submit():
        return _client_page(brand, row, ActionForm(), form)
    now = utcnow()
    try:
        submission = service.claim_submission(
            db.session, form.submission.data, "api_client.revoked", now
        )
    except service.AlreadySubmitted as exc:
        return duplicate_response(brand, exc.submission)
    service.complete_submission(db.session, submission, row.client_id)
    if row.revoked_at is not None:
        flash(_("This client was already revoked."), "info")
    else:
        before = _client_state(row)
        clients.revoke_client(db.session, row.client_id, now)
        record(
            db.session,
            actor=actor(),
            action="api_client.revoked",
            object_type="api_client",
            object_id=row.client_id,
            before=before,
            after=_client_state(row),
        )
        flash(
            _(
                "Client %(name)s revoked: its secret and all its tokens stopped working.",
                name=row.name or row.client_id,
            ),
            "success",
        )
    return redirect(url_for(".client", slug=brand.slug, client_id=row.client_id), 303)
