"""The consumer's interests (topics, brand by brand) and plans (intents) pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from babel import Locale
from babel.numbers import format_currency
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import brand_by_slug, list_brands
from vrm_portal.clock import utcnow
from vrm_portal.consent.web import page_locale
from vrm_portal.extensions import db
from vrm_portal.interests import service
from vrm_portal.interests.forms import (
    INTENT_PROBLEMS,
    IntentForm,
    InterestsForm,
    WithdrawIntentForm,
    category_label,
    horizon_label,
)
from vrm_portal.interests.models import Intent, Topic
from vrm_portal.web import client_info, form_status

bp = Blueprint("interests", __name__)

#: Largest id the database stores; a larger one in a URL cannot name an intent.
MAX_ID = 2**31 - 1


@bp.before_request
@login_required  # type: ignore[untyped-decorator]
def _require_sign_in() -> None:
    """Every page here is personal: signed-in only."""


@dataclass(frozen=True)
class BrandInterests:
    brand: Brand
    topics: list[tuple[Topic, bool]]
    form: InterestsForm
    seen: service.Visibility


@dataclass(frozen=True)
class Unseen:
    """A brand the consumer chose that does not see the plan, and why."""

    brand: Brand
    #: The consent that would let it see the plan (None: the brand asks for none).
    visibility: service.Visibility | None


@dataclass(frozen=True)
class IntentView:
    intent: Intent
    category: str
    horizon: str
    budget: str
    brands: list[str]
    lapsed: bool
    #: The chosen brands that see the plan now (names), and those that do not.
    seen_by: list[str] = field(default_factory=list)
    unseen_by: list[Unseen] = field(default_factory=list)
    #: Withdrawn a moment ago: the withdrawal may still be undone.
    undoable: bool = False


def _find_brand(brand_slug: str) -> Brand:
    found = brand_by_slug(db.session, brand_slug) if service.SLUG.fullmatch(brand_slug) else None
    if found is None:
        abort(404)
    return found


@bp.get("/interests")
def interests() -> ResponseReturnValue:
    return _interests_page()


def _interests_page(failed: Brand | None = None, failed_form: InterestsForm | None = None) -> str:
    account = current_user.account
    brands = list_brands(db.session)
    seen = service.visibility(db.session, account, brands, utcnow())
    sections = []
    for brand in brands:
        choices = service.topic_choices(db.session, account, brand)
        if not choices:
            continue
        if failed is not None and brand.id == failed.id and failed_form is not None:
            form = failed_form
            ticked = set(form.topics.data or ())
            choices = [(topic, topic.key in ticked) for topic, _chosen in choices]
        else:
            form = InterestsForm(formdata=None)
        sections.append(BrandInterests(brand, choices, form, seen[brand.id]))
    return render_template(
        "interests/interests.html", sections=sections, failed=failed, locale=page_locale()
    )


@bp.post("/interests/<brand_slug>")
def save_interests(brand_slug: str) -> ResponseReturnValue:
    brand = _find_brand(brand_slug)
    form = InterestsForm()
    try:
        change = service.set_interests(
            db.session,
            current_user.account,
            brand,
            set(form.topics.data or ()),
            client_info(),
        )
    except service.UnknownTopic:
        form.topics.errors = [
            _(
                "%(brand)s does not offer one of the topics you sent (any more). Nothing was "
                "changed: choose again below.",
                brand=brand.name,
            )
        ]
        return _interests_page(brand, form), 422
    if change.changed:
        flash(_("Your interests for %(brand)s are saved.", brand=brand.name), "success")
    else:
        flash(
            _(
                "Nothing changed: these were already your interests for %(brand)s.",
                brand=brand.name,
            ),
            "info",
        )
    return redirect(url_for(".interests", _anchor=f"brand-{brand.slug}")), 303


def _brand_choices(brands: list[Brand]) -> list[tuple[str, str]]:
    return [(brand.slug, brand.name) for brand in brands]


@bp.get("/intents")
def intents() -> ResponseReturnValue:
    brands = list_brands(db.session)
    return _intents_page(IntentForm(formdata=None, brand_choices=_brand_choices(brands)), brands)


@bp.post("/intents")
def state_intent() -> ResponseReturnValue:
    brands = list_brands(db.session)
    form = IntentForm(brand_choices=_brand_choices(brands))
    if form.validate_on_submit():
        today = utcnow().date()
        try:
            intent = service.state_intent(
                db.session, current_user.account, form.intent_input(), today, client_info()
            )
        except service.IntentInvalid as exc:
            field, message = INTENT_PROBLEMS[exc.reason]
            getattr(form, field).errors.append(message)
        except service.IntentAlreadyStated:
            flash(_("You already shared this plan. Nothing was added."), "info")
            return redirect(url_for(".intents")), 303
        else:
            flash(
                _(
                    "Your plan is saved. It lapses on %(date)s. Until then, the brands you chose "
                    "see it while you allow them offers chosen from your interests and plans.",
                    date=format_date(intent.ends_on, "long"),
                ),
                "success",
            )
            return redirect(url_for(".intents", _anchor=f"intent-{intent.id}")), 303
    return _intents_page(form, brands), form_status(form)


def _intents_page(form: IntentForm, brands: list[Brand], editing: Intent | None = None) -> str:
    account = current_user.account
    now = utcnow()
    today = now.date()
    active, past = service.intents_of(db.session, account, today)
    seen_by = service.visibility(db.session, account, brands, now)
    # The rule of the brand API and of the feed: who may see plans right now.
    allowed = service.brands_that_may_see(db.session, account, {b.id for b in brands}, now)
    views = [_intent_view(i, today, now, allowed, seen_by) for i in active]
    return render_template(
        "interests/intents.html",
        form=form,
        active=views,
        past=[_intent_view(i, today, now, allowed, seen_by) for i in past],
        brands=brands,
        seen_by=seen_by,
        withdraw_form=WithdrawIntentForm(formdata=None),
        locale=page_locale(),
        editing=editing,
    )


def _euros(amount: int) -> str:
    """A whole amount of euros in the reader's language ("€15,000", "15 000 €")."""
    locale = Locale.parse(str(get_locale() or "en"))
    pattern = locale.currency_formats["standard"].pattern.replace(".00", "")
    return format_currency(amount, "EUR", format=pattern, locale=locale, currency_digits=False)


def _budget(intent: Intent) -> str:
    low, high = intent.budget_min, intent.budget_max
    if low is not None and high is not None:
        return str(_("Between %(low)s and %(high)s", low=_euros(low), high=_euros(high)))
    if low is not None:
        return str(_("From %(low)s", low=_euros(low)))
    if high is not None:
        return str(_("Up to %(high)s", high=_euros(high)))
    return str(_("No budget given"))


def _intent_view(
    intent: Intent,
    today: date,
    now: datetime,
    allowed: set[int],
    seen_by: dict[int, service.Visibility],
) -> IntentView:
    chosen = sorted((link.brand for link in intent.brands), key=lambda b: b.name)
    return IntentView(
        intent=intent,
        category=category_label(intent.category),
        horizon=horizon_label(intent.horizon_months),
        budget=_budget(intent),
        brands=[brand.name for brand in chosen],
        lapsed=intent.ends_on < today,
        seen_by=[brand.name for brand in chosen if brand.id in allowed],
        unseen_by=[Unseen(b, seen_by.get(b.id)) for b in chosen if b.id not in allowed],
        undoable=service.undoable(intent, now) and intent.ends_on >= today,
    )


@bp.post("/intents/<int:intent_id>/withdraw")
def withdraw_intent(intent_id: int) -> ResponseReturnValue:
    if intent_id > MAX_ID:
        abort(404)
    try:
        result = service.withdraw_intent(
            db.session, current_user.account, intent_id, utcnow(), client_info()
        )
    except service.IntentNotFound:
        abort(404)
    label = category_label(result.intent.category)
    if result.outcome is service.WithdrawOutcome.UNCHANGED:
        flash(_("“%(plan)s” was already withdrawn. Nothing changed.", plan=label), "info")
    else:
        flash(
            _(
                "“%(plan)s” is withdrawn: no brand sees it any more. You can undo this for "
                "a few minutes below.",
                plan=label,
            ),
            "success",
        )
    return redirect(url_for(".intents", _anchor=f"intent-{result.intent.id}")), 303


@bp.post("/intents/<int:intent_id>/restore")
def restore_intent(intent_id: int) -> ResponseReturnValue:
    """Undo a withdrawal made a moment ago."""
    if intent_id > MAX_ID:
        abort(404)
    if not WithdrawIntentForm().validate_on_submit():
        abort(400)
    try:
        intent = service.restore_intent(
            db.session, current_user.account, intent_id, utcnow(), client_info()
        )
    except service.IntentNotFound:
        flash(_("This withdrawal can no longer be undone. Share the plan again instead."), "error")
        return redirect(url_for(".intents")), 303
    flash(
        _(
            "Undone: “%(plan)s” is shown again to the brands you chose.",
            plan=category_label(intent.category),
        ),
        "success",
    )
    return redirect(url_for(".intents", _anchor=f"intent-{intent.id}")), 303


def _edit_form(intent: Intent, brands: list[Brand]) -> IntentForm:
    """The plan form filled with what the plan says now."""
    form = IntentForm(formdata=None, brand_choices=_brand_choices(brands))
    form.category.data = intent.category
    form.summary.data = intent.summary
    form.horizon.data = intent.horizon_months
    form.budget_min.data = "" if intent.budget_min is None else str(intent.budget_min)
    form.budget_max.data = "" if intent.budget_max is None else str(intent.budget_max)
    form.brands.data = sorted(link.brand.slug for link in intent.brands)
    return form


def _current_intent(intent_id: int) -> Intent:
    if intent_id > MAX_ID:
        abort(404)
    active, _past = service.intents_of(db.session, current_user.account, utcnow().date())
    found = next((intent for intent in active if intent.id == intent_id), None)
    if found is None:
        abort(404)
    return found


@bp.get("/intents/<int:intent_id>/edit")
def edit_intent(intent_id: int) -> ResponseReturnValue:
    intent = _current_intent(intent_id)
    brands = list_brands(db.session)
    return _intents_page(_edit_form(intent, brands), brands, editing=intent)


@bp.post("/intents/<int:intent_id>/edit")
def change_intent(intent_id: int) -> ResponseReturnValue:
    intent = _current_intent(intent_id)
    brands = list_brands(db.session)
    form = IntentForm(brand_choices=_brand_choices(brands))
    if form.validate_on_submit():
        try:
            outcome = service.change_intent(
                db.session,
                current_user.account,
                intent.id,
                form.intent_input(),
                utcnow().date(),
                client_info(),
            )
        except service.IntentInvalid as exc:
            field_name, message = INTENT_PROBLEMS[exc.reason]
            getattr(form, field_name).errors.append(message)
        except service.IntentNotFound:
            abort(404)
        else:
            if outcome is service.ChangeOutcome.UNCHANGED:
                flash(_("Nothing changed: your plan already said this."), "info")
            else:
                flash(_("Your plan is changed."), "success")
            return redirect(url_for(".intents", _anchor=f"intent-{intent.id}")), 303
    return _intents_page(form, brands, editing=intent), form_status(form)
