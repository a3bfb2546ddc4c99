"""The "My data" pages: the timeline of the relationship, and who read my data."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import list_brands
from vrm_portal.consent.web import page_locale
from vrm_portal.extensions import db
from vrm_portal.mydata import access, timeline
from vrm_portal.web import page_arg

bp = Blueprint("mydata", __name__, url_prefix="/my-data")

TIMELINE_PAGE_SIZE = 25
ACCESS_PAGE_SIZE = 25
#: Longest unknown value quoted back in a message.
_QUOTE_MAX = 40


@bp.before_request
@login_required  # type: ignore[untyped-decorator]
def _require_sign_in() -> None:
    """Every page here is personal: signed-in only."""


def _quoted(value: str) -> str:
    return value if len(value) <= _QUOTE_MAX else value[:_QUOTE_MAX] + "…"


def _brand_arg(brands: list[Brand], notices: list[str]) -> Brand | None:
    """``?brand=``: one of the catalogue's slugs; anything else is ignored, and said so."""
    slug = request.args.get("brand", "")
    if not slug:
        return None
    found = next((b for b in brands if b.slug == slug), None)
    if found is None:
        notices.append(
            _("There is no brand “%(brand)s”, so every brand is shown.", brand=_quoted(slug))
        )
    return found


@bp.get("/", endpoint="timeline")
def show_timeline() -> ResponseReturnValue:
    account = current_user.account
    brands = list_brands(db.session)
    notices: list[str] = []
    selected = _brand_arg(brands, notices)
    type_arg = request.args.get("type", "")
    entry_type = None
    if type_arg:
        try:
            entry_type = timeline.EntryType(type_arg)
        except ValueError:
            notices.append(
                _("There is no type “%(type)s”, so every type is shown.", type=_quoted(type_arg))
            )
    cursor = None
    cursor_arg = request.args.get("cursor", "")
    if cursor_arg:
        try:
            cursor = timeline.decode_cursor(cursor_arg)
        except timeline.InvalidCursor:
            notices.append(
                _("This page link is incomplete or out of date, so the newest entries are shown.")
            )
    page = timeline.timeline_page(
        db.session,
        account,
        locale=page_locale(),
        brands=brands,
        brand=selected,
        entry_type=entry_type,
        cursor=cursor,
        per_page=TIMELINE_PAGE_SIZE,
    )
    filters: dict[str, Any] = {
        "brand": selected.slug if selected else None,
        "type": entry_type.value if entry_type else None,
    }
    return render_template(
        "mydata/timeline.html",
        entries=page.entries,
        brands=brands,
        selected=selected,
        entry_type=entry_type,
        types=[(t.value, str(timeline.TYPE_LABELS[t])) for t in timeline.EntryType],
        brandless=entry_type in timeline.BRANDLESS_TYPES if entry_type else False,
        notices=notices,
        is_first=page.is_first,
        filtered=selected is not None or entry_type is not None,
        newest_url=url_for(".timeline", **filters),
        older_url=url_for(".timeline", cursor=page.older, **filters) if page.older else None,
        newer_url=url_for(".timeline", cursor=page.newer, **filters) if page.newer else None,
    )


@bp.get("/access", endpoint="access")
def show_access() -> ResponseReturnValue:
    account = current_user.account
    brands = list_brands(db.session)
    notices: list[str] = []
    selected = _brand_arg(brands, notices)
    summary = access.reads_by_brand(db.session, account.id)
    reads = access.reads_of(
        db.session, account.id, brand=selected, page=page_arg(), per_page=ACCESS_PAGE_SIZE
    )
    slug = selected.slug if selected else None
    return render_template(
        "mydata/access.html",
        office=access.office_lookups_of(db.session, account.subject_key),
        summary=summary,
        reads=reads,
        brands=brands,
        selected=selected,
        notices=notices,
        prev_url=url_for(".access", brand=slug, page=reads.page - 1) if reads.page > 1 else None,
        next_url=url_for(".access", brand=slug, page=reads.page + 1)
        if reads.page < reads.pages
        else None,
    )
