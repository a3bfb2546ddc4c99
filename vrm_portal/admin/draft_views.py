"""Console pages of new text versions: the draft (admins) and its review (DPOs)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from vrm_portal.admin import catalogue_admin as catalogue
from vrm_portal.admin import drafts
from vrm_portal.admin.blueprint import bp, staff_member
from vrm_portal.admin.catalogue_views import _brand, _purpose, text_of
from vrm_portal.admin.errors import NotAllowed, NothingToDo, Stale
from vrm_portal.admin.forms import DraftForm, ReviewForm
from vrm_portal.admin.models import TextDraft
from vrm_portal.extensions import db
from vrm_portal.web import form_status


def _draft(draft_id: int) -> TextDraft:
    draft = db.session.get(TextDraft, draft_id)
    if draft is None:
        abort(404)
    return draft


@bp.route("/brands/<slug>/purposes/<key>/draft", methods=["GET", "POST"])
def new_draft(slug: str, key: str) -> ResponseReturnValue:
    brand = _brand(slug)
    purpose = _purpose(brand, key)
    current = catalogue.current_text(db.session, purpose)
    waiting = drafts.pending_draft(db.session, purpose)
    if waiting is not None:
        flash(_("A draft of this purpose is already waiting for review."), "info")
        return redirect(url_for("admin.draft", draft_id=waiting.id))
    form = DraftForm(obj=current)
    if purpose.retired_at is None and form.validate_on_submit():
        try:
            draft = drafts.create_draft(db.session, staff_member(), purpose, text_of(form))
        except NothingToDo as exc:
            if str(exc) == "same-text":
                form.form_errors.append(
                    _("This is the current text: change the title or the text first.")
                )
            else:
                flash(_("A draft of this purpose is already waiting for review."), "info")
                return redirect(url_for("admin.purpose", slug=slug, key=key))
        else:
            flash(_("Draft saved. A data protection officer must now approve it."), "success")
            return redirect(url_for("admin.draft", draft_id=draft.id))
    return render_template(
        "admin/draft_form.html",
        brand=brand,
        purpose=purpose,
        form=form,
        renewals=drafts.renewals_needed(db.session, purpose),
    ), form_status(form)


@bp.get("/drafts", endpoint="drafts")
def drafts_list() -> ResponseReturnValue:
    return render_template("admin/drafts.html", drafts=drafts.pending_drafts(db.session))


def _render_draft(draft: TextDraft, form: ReviewForm) -> ResponseReturnValue:
    return render_template(
        "admin/draft.html",
        draft=draft,
        purpose=draft.purpose,
        diff=drafts.draft_diff(db.session, draft),
        renewals=drafts.renewals_needed(db.session, draft.purpose),
        may_review=drafts.may_review(draft, staff_member()),
        form=form,
    ), form_status(form)


@bp.get("/drafts/<int:draft_id>")
def draft(draft_id: int) -> ResponseReturnValue:
    return _render_draft(_draft(draft_id), ReviewForm())


def _refusal(code: str) -> str:
    return str(__refusal_any(code))


def __refusal_any(code: str) -> object:
    return {
        "own-draft": _("You wrote this draft: another staff member must review it."),
        "not-dpo": _("Only a data protection officer may review a draft."),
        "comment-required": _("Say in the comment why the draft is rejected."),
        "retired": _("This purpose is retired."),
        "outdated": _("The current text changed since this draft was written: write a new draft."),
        "same-text": _("This text is the current one already."),
    }.get(code, code)


@bp.post("/drafts/<int:draft_id>/approve")
def approve_draft(draft_id: int) -> ResponseReturnValue:
    item = _draft(draft_id)
    form = ReviewForm()
    if form.validate_on_submit():
        try:
            version = drafts.approve(db.session, staff_member(), item, form.comment.data or "")
        except NothingToDo:
            flash(_("This draft was reviewed already."), "info")
            return redirect(url_for("admin.draft", draft_id=item.id))
        except (NotAllowed, Stale) as exc:
            form.form_errors.append(_refusal(str(exc)))
        else:
            flash(
                _(
                    "Approved: version %(version)s is published. Consumers who agreed to "
                    "an earlier text are asked to renew.",
                    version=version.version,
                ),
                "success",
            )
            return redirect(url_for("admin.draft", draft_id=item.id))
    return _render_draft(item, form)


@bp.post("/drafts/<int:draft_id>/reject")
def reject_draft(draft_id: int) -> ResponseReturnValue:
    item = _draft(draft_id)
    form = ReviewForm()
    if form.validate_on_submit():
        try:
            drafts.reject(db.session, staff_member(), item, form.comment.data or "")
        except NothingToDo:
            flash(_("This draft was reviewed already."), "info")
            return redirect(url_for("admin.draft", draft_id=item.id))
        except NotAllowed as exc:
            if str(exc) == "comment-required":
                form.comment.errors.append(_refusal(str(exc)))
            else:
                form.form_errors.append(_refusal(str(exc)))
        else:
            flash(_("Draft rejected."), "success")
            return redirect(url_for("admin.draft", draft_id=item.id))
    return _render_draft(item, form)
