"""Console pages of the catalogue: brands, purposes, topics, the catalogue file."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from pydantic import ValidationError
from sqlalchemy import select

from vrm_portal.admin import catalogue_admin as catalogue
from vrm_portal.admin import drafts
from vrm_portal.admin.blueprint import bp, staff_member
from vrm_portal.admin.errors import AlreadyExists, NothingToDo
from vrm_portal.admin.forms import (
    BrandForm,
    EmptyForm,
    ImportForm,
    NewPurposeForm,
    PurposeMetadataForm,
    RenameTopicForm,
    RetireForm,
    TopicForm,
)
from vrm_portal.brands.models import Brand
from vrm_portal.consent.catalogue import CatalogueSpec, PurposeText
from vrm_portal.consent.models import Purpose
from vrm_portal.consent.signing import current_notary
from vrm_portal.extensions import db
from vrm_portal.interests.models import Topic
from vrm_portal.web import form_status

#: The largest catalogue file the console reads.
MAX_IMPORT_BYTES = 2 * 1024 * 1024


def _brand(slug: str) -> Brand:
    brand = db.session.scalar(select(Brand).where(Brand.slug == slug))
    if brand is None:
        abort(404)
    return brand


def _purpose(brand: Brand, key: str) -> Purpose:
    purpose = db.session.scalar(
        select(Purpose).where(Purpose.brand_id == brand.id, Purpose.key == key)
    )
    if purpose is None:
        abort(404)
    return purpose


def _topic(brand: Brand, key: str) -> Topic:
    topic = db.session.scalar(select(Topic).where(Topic.brand_id == brand.id, Topic.key == key))
    if topic is None:
        abort(404)
    return topic


def _brand_fields(form: BrandForm) -> dict[str, Any]:
    return {name: (getattr(form, name).data or "").strip() for name in catalogue.BRAND_FIELDS}


def _purpose_fields(form: PurposeMetadataForm) -> dict[str, Any]:
    return {
        "category": form.category.data,
        "legal_basis": form.legal_basis.data,
        "validity_days": form.validity_days.data,
        "shares_with_third_parties": bool(form.shares_with_third_parties.data),
    }


def text_of(form: Any) -> PurposeText:
    return PurposeText(
        title_en=form.title_en.data.strip(),
        title_fr=form.title_fr.data.strip(),
        text_en=form.text_en.data.strip(),
        text_fr=form.text_fr.data.strip(),
    )


# ---- front page and brands --------------------------------------------------------------


@bp.get("/")
def index() -> ResponseReturnValue:
    from vrm_portal.admin.staff import open_invitations
    from vrm_portal.jobs.service import counts

    return render_template(
        "admin/index.html",
        brands=db.session.scalars(select(Brand).order_by(Brand.name)).all(),
        pending=drafts.pending_drafts(db.session),
        invitations=len(open_invitations(db.session)),
        jobs=counts(db.session),
    )


@bp.get("/brands")
def brands() -> ResponseReturnValue:
    return render_template(
        "admin/brands.html", brands=db.session.scalars(select(Brand).order_by(Brand.name)).all()
    )


@bp.route("/brands/new", methods=["GET", "POST"])
def new_brand() -> ResponseReturnValue:
    form = BrandForm()
    if form.validate_on_submit():
        try:
            brand = catalogue.create_brand(
                db.session, staff_member(), form.slug.data, _brand_fields(form)
            )
        except AlreadyExists:
            form.slug.errors.append(_("Another brand already has this key."))
        else:
            flash(_("Brand %(name)s created.", name=brand.name), "success")
            return redirect(url_for("admin.brand", slug=brand.slug))
    return render_template("admin/brand_form.html", form=form, brand=None), form_status(form)


@bp.get("/brands/<slug>")
def brand(slug: str) -> ResponseReturnValue:
    found = _brand(slug)
    purposes = catalogue.purposes_of(db.session, found)
    return render_template(
        "admin/brand.html",
        brand=found,
        purposes=purposes,
        topics=catalogue.topics_of(db.session, found),
        topic_form=TopicForm(),
        pending={p.id: drafts.pending_draft(db.session, p) for p in purposes},
    )


@bp.route("/brands/<slug>/edit", methods=["GET", "POST"])
def edit_brand(slug: str) -> ResponseReturnValue:
    found = _brand(slug)
    form = BrandForm(obj=found)
    del form.slug
    if form.validate_on_submit():
        if catalogue.update_brand(db.session, staff_member(), found, _brand_fields(form)):
            flash(_("Brand %(name)s saved.", name=found.name), "success")
        else:
            flash(_("Nothing changed."), "info")
        return redirect(url_for("admin.brand", slug=found.slug))
    return render_template("admin/brand_form.html", form=form, brand=found), form_status(form)


# ---- purposes ---------------------------------------------------------------------------


@bp.route("/brands/<slug>/purposes/new", methods=["GET", "POST"])
def new_purpose(slug: str) -> ResponseReturnValue:
    found = _brand(slug)
    form = NewPurposeForm()
    if form.validate_on_submit():
        try:
            purpose = catalogue.create_purpose(
                db.session,
                staff_member(),
                found,
                form.key.data,
                _purpose_fields(form),
                text_of(form),
            )
        except AlreadyExists:
            form.key.errors.append(_("This brand already has a purpose with this key."))
        else:
            flash(_("Purpose %(key)s created.", key=purpose.key), "success")
            return redirect(url_for("admin.brand", slug=found.slug))
    return render_template("admin/purpose_new.html", form=form, brand=found), form_status(form)


@bp.route("/brands/<slug>/purposes/<key>", methods=["GET", "POST"])
def purpose(slug: str, key: str) -> ResponseReturnValue:
    found = _brand(slug)
    item = _purpose(found, key)
    form = PurposeMetadataForm(obj=item)
    if item.retired_at is None and form.validate_on_submit():
        if catalogue.update_purpose(db.session, staff_member(), item, _purpose_fields(form)):
            flash(_("Purpose %(key)s saved.", key=item.key), "success")
        else:
            flash(_("Nothing changed."), "info")
        return redirect(url_for("admin.purpose", slug=found.slug, key=item.key))
    return render_template(
        "admin/purpose.html",
        brand=found,
        purpose=item,
        form=form,
        current=catalogue.current_text(db.session, item),
        drafts=drafts.recent_drafts(db.session, item),
        pending=drafts.pending_draft(db.session, item),
    ), form_status(form)


@bp.route("/brands/<slug>/purposes/<key>/retire", methods=["GET", "POST"])
def retire_purpose(slug: str, key: str) -> ResponseReturnValue:
    found = _brand(slug)
    item = _purpose(found, key)
    if item.retired_at is not None:
        flash(_("This purpose is retired already."), "info")
        return redirect(url_for("admin.purpose", slug=found.slug, key=item.key))
    form = RetireForm()
    affected = catalogue.consumers_affected_by_retirement(db.session, item)
    if form.validate_on_submit():
        try:
            withdrawn = catalogue.retire_purpose(
                db.session, staff_member(), item, current_notary(), reason=form.reason.data
            )
        except NothingToDo:
            flash(_("This purpose is retired already."), "info")
        else:
            flash(
                _(
                    "Purpose %(key)s retired: %(count)s consent(s) withdrawn.",
                    key=item.key,
                    count=withdrawn,
                ),
                "success",
            )
        return redirect(url_for("admin.purpose", slug=found.slug, key=item.key))
    return render_template(
        "admin/purpose_retire.html", brand=found, purpose=item, form=form, affected=affected
    ), form_status(form)


# ---- topics -----------------------------------------------------------------------------


@bp.post("/brands/<slug>/topics")
def add_topic(slug: str) -> ResponseReturnValue:
    found = _brand(slug)
    form = TopicForm()
    if form.validate_on_submit():
        try:
            catalogue.add_topic(
                db.session,
                staff_member(),
                found,
                form.key.data,
                form.label_en.data.strip(),
                form.label_fr.data.strip(),
            )
        except AlreadyExists:
            form.key.errors.append(_("This brand already has a topic with this key."))
        else:
            flash(_("Topic %(key)s added.", key=form.key.data), "success")
            return redirect(url_for("admin.brand", slug=found.slug))
    purposes = catalogue.purposes_of(db.session, found)
    return render_template(
        "admin/brand.html",
        brand=found,
        purposes=purposes,
        topics=catalogue.topics_of(db.session, found),
        topic_form=form,
        pending={p.id: drafts.pending_draft(db.session, p) for p in purposes},
    ), form_status(form)


@bp.route("/brands/<slug>/topics/<key>", methods=["GET", "POST"])
def topic(slug: str, key: str) -> ResponseReturnValue:
    found = _brand(slug)
    item = _topic(found, key)
    form = RenameTopicForm(obj=item)
    if form.validate_on_submit():
        if catalogue.rename_topic(
            db.session, staff_member(), item, form.label_en.data.strip(), form.label_fr.data.strip()
        ):
            flash(_("Topic %(key)s renamed.", key=item.key), "success")
        else:
            flash(_("Nothing changed."), "info")
        return redirect(url_for("admin.brand", slug=found.slug))
    return render_template(
        "admin/topic.html", brand=found, topic=item, form=form, toggle=EmptyForm()
    ), form_status(form)


@bp.post("/brands/<slug>/topics/<key>/retire")
def retire_topic(slug: str, key: str) -> ResponseReturnValue:
    found = _brand(slug)
    item = _topic(found, key)
    retire = request.form.get("retired", "1") != "0"
    if EmptyForm().validate_on_submit():
        try:
            catalogue.set_topic_retired(db.session, staff_member(), item, retire)
        except NothingToDo:
            flash(_("Nothing changed."), "info")
        else:
            if retire:
                flash(_("Topic %(key)s retired.", key=item.key), "success")
            else:
                flash(_("Topic %(key)s is offered again.", key=item.key), "success")
    return redirect(url_for("admin.brand", slug=found.slug))


# ---- the catalogue file -----------------------------------------------------------------


@bp.get("/catalogue")
def catalogue_file() -> ResponseReturnValue:
    return render_template("admin/catalogue.html", form=ImportForm(), problems=None)


@bp.get("/catalogue/export.json")
def export_catalogue() -> ResponseReturnValue:
    spec = catalogue.export_catalogue(db.session)
    body = json.dumps(spec.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="catalogue.json"'},
    )


def _problem_text(code: str) -> str:
    return str(__problem_text_any(code))


def __problem_text_any(code: str) -> object:
    if code == "text-changed":
        return _(
            "The text differs from the current version: publish a new text through a "
            "draft and its review, not by import."
        )
    if code == "retired":
        return _("This purpose is retired.")
    return code


@bp.post("/catalogue/import")
def import_catalogue() -> ResponseReturnValue:
    form = ImportForm()
    problems: list[tuple[str, str]] = []
    if form.validate_on_submit():
        raw = form.file.data.read(MAX_IMPORT_BYTES + 1)
        if len(raw) > MAX_IMPORT_BYTES:
            problems.append(("(file)", _("The file is larger than 2 MB.")))
        else:
            try:
                spec = CatalogueSpec.model_validate_json(raw)
            except ValidationError as exc:
                for error in exc.errors():
                    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
                    problems.append((where, error["msg"]))
            else:
                problems = [
                    (p.path, _problem_text(p.message))
                    for p in catalogue.review_import(db.session, spec)
                ]
                if not problems:
                    report = catalogue.import_file(db.session, staff_member(), spec)
                    if report.changed:
                        flash(
                            _(
                                "Catalogue imported: %(brands)s brand(s), %(purposes)s "
                                "purpose(s) and %(topics)s topic(s) created.",
                                brands=len(report.brands_created),
                                purposes=len(report.purposes_created),
                                topics=len(report.topics_created),
                            ),
                            "success",
                        )
                    else:
                        flash(_("Catalogue imported: nothing new."), "info")
                    return redirect(url_for("admin.catalogue_file"))
    status = 422 if problems or form.errors else 200
    return render_template("admin/catalogue.html", form=form, problems=problems), status
