"""The consumer's consent pages: brands, purposes (give / withdraw), history, receipts."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required

from vrm_portal.brands.service import brand_by_slug, list_brands
from vrm_portal.clock import utcnow
from vrm_portal.consent import queries, service
from vrm_portal.consent.errors import ConfirmationInvalid, ConsentVersionOutdated
from vrm_portal.consent.forms import ConfirmForm, ConsentChoiceForm, WithdrawAllForm
from vrm_portal.consent.models import CollectionMethod, Purpose
from vrm_portal.consent.receipt_reader import read_receipt
from vrm_portal.consent.receipts import MEDIA_TYPE
from vrm_portal.consent.signing import current_notary, receipt_jwks
from vrm_portal.consent.web import change_from_request, gpc_signal, page_locale
from vrm_portal.extensions import db
from vrm_portal.history.display import interaction_view
from vrm_portal.history.queries import Page, interactions_of
from vrm_portal.mail import send_later
from vrm_portal.web import page_arg, public_url

bp = Blueprint("consent", __name__, url_prefix="/consents")
wellknown = Blueprint("wellknown", __name__)

HISTORY_PAGE_SIZE = 20
RECORDED_PAGE_SIZE = 20


@bp.before_request
@login_required  # type: ignore[untyped-decorator]
def _require_sign_in() -> None:
    """Every page here is personal: signed-in only (the emailed link included)."""


@bp.get("/")
def overview() -> ResponseReturnValue:
    summaries = queries.brand_summaries(db.session, current_user.account, utcnow())
    return render_template("consent/overview.html", summaries=summaries, gpc=gpc_signal())


@bp.get("/<brand_slug>")
def brand(brand_slug: str) -> ResponseReturnValue:
    found = brand_by_slug(db.session, brand_slug)
    if found is None:
        abort(404)
    views = queries.purpose_views(db.session, current_user.account, found, utcnow())
    recorded = interactions_of(
        db.session, current_user.account.id, found.id, page_arg(), per_page=RECORDED_PAGE_SIZE
    )
    return render_template(
        "consent/brand.html",
        brand=found,
        views=views,
        locale=page_locale(),
        gpc=gpc_signal(),
        recorded=Page(
            items=[interaction_view(i) for i in recorded.items],
            page=recorded.page,
            pages=recorded.pages,
            total=recorded.total,
        ),
    )


@bp.post("/<brand_slug>/all/withdraw")
def withdraw_brand(brand_slug: str) -> ResponseReturnValue:
    """Withdraw every consent given to one brand: one click, one transaction."""
    found = brand_by_slug(db.session, brand_slug)
    if found is None:
        abort(404)
    if not WithdrawAllForm().validate_on_submit():
        flash(
            _("That choice could not be understood. Please use the buttons on this page."), "error"
        )
        return redirect(url_for(".brand", brand_slug=brand_slug)), 303
    done = service.withdraw_brand(
        db.session, current_notary(), current_user.account, found, change=change_from_request()
    )
    if done.withdrawn or done.cancelled:
        flash(
            ngettext(
                "%(num)s consent to %(brand)s withdrawn. Your receipts are in your history.",
                "%(num)s consents to %(brand)s withdrawn. Your receipts are in your history.",
                len(done.withdrawn),
                brand=found.name,
            ),
            "success",
        )
    else:
        flash(
            _("You had given no consent to %(brand)s: nothing to withdraw.", brand=found.name),
            "info",
        )
    return redirect(url_for(".brand", brand_slug=brand_slug)), 303


@bp.post("/all/marketing/withdraw")
def withdraw_marketing() -> ResponseReturnValue:
    """Stop all marketing from every brand: one click, one transaction."""
    if not WithdrawAllForm().validate_on_submit():
        flash(
            _("That choice could not be understood. Please use the buttons on this page."), "error"
        )
        return redirect(url_for(".overview")), 303
    done = service.withdraw_marketing(
        db.session, current_notary(), current_user.account, change=change_from_request()
    )
    if done.withdrawn or done.cancelled:
        flash(
            ngettext(
                "%(num)s marketing consent withdrawn. Your receipts are in your history.",
                "%(num)s marketing consents withdrawn. Your receipts are in your history.",
                len(done.withdrawn),
            ),
            "success",
        )
    else:
        flash(_("You had given no marketing consent: nothing to withdraw."), "info")
    return redirect(url_for(".overview")), 303


@bp.post("/<brand_slug>/<purpose_key>")
def choose(brand_slug: str, purpose_key: str) -> ResponseReturnValue:
    back = redirect(url_for(".brand", brand_slug=brand_slug, _anchor=f"purpose-{purpose_key}"))
    # The brand, the purpose and its current text in one statement (the brand is kept
    # referenced: ``purpose.brand`` then needs no query).
    found = service.find_choice(db.session, brand_slug, purpose_key)
    if found is None:
        abort(404)
    _brand, purpose = found
    form = ConsentChoiceForm()
    if not form.validate_on_submit():
        flash(
            _("That choice could not be understood. Please use the buttons on this page."), "error"
        )
        return redirect(url_for(".brand", brand_slug=brand_slug)), 303
    if purpose is None or (purpose.retired_at is not None and form.choice.data == "grant"):
        # Unknown, or retired (no longer asked: it can still be withdrawn).
        flash(
            _("This brand does not ask for that consent (any more). Nothing was recorded."), "error"
        )
        return redirect(url_for(".brand", brand_slug=brand_slug)), 303
    account = current_user.account
    change = change_from_request()
    title = service.version_of(db.session, purpose).title(change.language)
    try:
        if form.choice.data == "grant":
            result = service.grant(
                db.session,
                current_notary(),
                account,
                purpose,
                shown_version=form.version.data,
                change=change,
                confirmation_ttl=current_app.config["CONSENT_CONFIRMATION_TTL"],
            )
        else:
            result = service.withdraw(db.session, current_notary(), account, purpose, change=change)
    except ConsentVersionOutdated:
        flash(
            _(
                "The text of “%(purpose)s” changed while the page was open. Nothing was "
                "recorded: please read the new version below and choose again.",
                purpose=title,
            ),
            "warning",
        )
        return back, 303
    _announce(result, purpose, title, form.choice.data == "grant")
    return back, 303


def _announce(result: service.Result, purpose: Purpose, title: str, granting: bool) -> None:
    outcome = result.outcome
    if outcome is service.Outcome.CONFIRMATION_SENT:
        assert result.confirmation_token is not None
        _send_confirmation(purpose, title, result.confirmation_token)
        flash(
            _(
                "Almost done: we sent a link to %(email)s. “%(purpose)s” starts once you open it.",
                email=current_user.account.email,
                purpose=title,
            ),
            "info",
        )
    elif outcome is service.Outcome.PENDING_CANCELLED:
        flash(_("Cancelled: “%(purpose)s” was not given.", purpose=title), "success")
    elif outcome is service.Outcome.UNCHANGED:
        if granting:
            flash(_("“%(purpose)s” was already given; nothing changed.", purpose=title), "info")
        else:
            flash(_("“%(purpose)s” was not given; nothing changed.", purpose=title), "info")
    elif granting:
        flash(
            _("Consent given: “%(purpose)s”. Your receipt is in your history.", purpose=title),
            "success",
        )
    else:
        flash(
            _("Consent withdrawn: “%(purpose)s”. Your receipt is in your history.", purpose=title),
            "success",
        )


def _send_confirmation(purpose: Purpose, title: str, token: str) -> None:
    account = current_user.account
    ttl = current_app.config["CONSENT_CONFIRMATION_TTL"]
    send_later(
        account.email,
        _l("Confirm that you want emails from %(brand)s", brand=purpose.brand.name),
        "confirm_consent",
        locale=page_locale(),
        time_zone=account.time_zone,
        brand=purpose.brand.name,
        purpose=title,
        link=public_url("consent.confirm", token=token),
        expires_hours=int(ttl.total_seconds() // 3600),
    )


CONFIRMATION_PROBLEMS = {
    "invalid": _l(
        "This link is not valid. Check that you copied it whole, or give the consent again."
    ),
    "used": _l("This link was already used, or the request was cancelled."),
    "expired": _l("This link has expired. Give the consent again to get a new one."),
    "outdated": _l(
        "The text of this consent changed since the link was sent. Read the new version and "
        "give the consent again."
    ),
}


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("consent/confirm.html", form=form, problem=None)
    try:
        service.confirm(
            db.session,
            current_notary(),
            token,
            current_user.account,
            change=change_from_request(CollectionMethod.EMAIL_CONFIRMATION),
        )
    except ConfirmationInvalid as exc:
        return render_template(
            "consent/confirm.html", form=form, problem=CONFIRMATION_PROBLEMS[exc.reason]
        ), 410 if exc.reason in ("used", "expired", "outdated") else 404
    flash(_("Thank you: your consent is confirmed."), "success")
    return redirect(url_for(".history")), 303


@bp.get("/history")
def history() -> ResponseReturnValue:
    page = request.args.get("page", "1")
    if not page.isascii() or not page.isdigit() or not 1 <= int(page) <= 100_000:
        abort(404)
    brand_slug = request.args.get("brand") or None
    selected = brand_by_slug(db.session, brand_slug) if brand_slug else None
    if brand_slug and selected is None:
        abort(404)
    entries, total = queries.history(
        db.session,
        current_user.account,
        page_locale(),
        page=int(page),
        per_page=HISTORY_PAGE_SIZE,
        brand=selected,
    )
    pages = max(1, -(-total // HISTORY_PAGE_SIZE))
    if int(page) > pages:
        abort(404)
    return render_template(
        "consent/history.html",
        entries=entries,
        total=total,
        page=int(page),
        pages=pages,
        brands=list_brands(db.session),
        selected=selected,
    )


@bp.get("/receipts/<uuid:receipt_id>")
def receipt_page(receipt_id: uuid.UUID) -> ResponseReturnValue:
    """The receipt in plain words, and whether its signature verifies."""
    found = read_receipt(db.session, current_user.account, str(receipt_id), receipt_jwks())
    if found is None:
        abort(404)
    return render_template("consent/receipt.html", receipt=found, locale=page_locale())


@bp.get("/receipts/<receipt_id>.jwt")
def receipt(receipt_id: str) -> ResponseReturnValue:
    found = queries.receipt_of(db.session, current_user.account, receipt_id)
    if found is None:
        abort(404)
    return Response(
        found.jws,
        mimetype=MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="consent-receipt-{receipt_id}.jwt"'},
    )


@wellknown.get("/.well-known/jwks.json")
def jwks() -> ResponseReturnValue:
    """The receipts' public keys: the current one first, then the retired ones."""
    response = current_app.json.response(receipt_jwks())
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
