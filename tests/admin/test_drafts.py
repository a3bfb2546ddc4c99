"""New text versions, four-eyes: an admin drafts, a different staff member (a DPO)
approves or rejects; approval publishes, and consumers then need to renew."""

from __future__ import annotations

from sqlalchemy import select

from tests.admin.conftest import page_text, post
from vrm_portal.admin.models import DraftStatus, TextDraft
from vrm_portal.audit.models import StaffAction
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod, PurposeVersion
from vrm_portal.consent.service import Change

PURPOSE = "/admin/brands/maison-berlingot/purposes/email-offers"
TEXT = {
    "title_en": "Offers by email (new)",
    "title_fr": "Offres par e-mail (nouveau)",
    "text_en": "We send offers.\nAt most one a week.",
    "text_fr": "Nous envoyons des offres.\nAu plus une par semaine.",
}


def _grant(db_session, make_account, notary, email="carol@example.com"):
    consumer = make_account(email)
    purpose = service.find_purpose(db_session, "maison-berlingot", "email-offers")
    service.grant(
        db_session,
        notary,
        consumer,
        purpose,
        shown_version=purpose.current_version,
        change=Change(CollectionMethod.API, "en", utcnow()),
    )
    db_session.commit()
    return consumer, purpose


def _draft(admin_browser):
    response = post(admin_browser, PURPOSE + "/draft", TEXT, PURPOSE + "/draft")
    assert response.status_code == 302, page_text(response)
    return int(response.location.rsplit("/", 1)[1])


def test_the_draft_page_counts_renewals_and_a_double_submit_drafts_once(
    as_role, db_session, make_account, notary
):
    _grant(db_session, make_account, notary)
    admin, _ = as_role("admin")
    form = page_text(admin.get(PURPOSE + "/draft"))
    assert "1 consumer will need to renew" in form
    draft_id = _draft(admin)
    again = post(admin, PURPOSE + "/draft", TEXT, PURPOSE)
    assert again.status_code == 302
    assert db_session.scalar(select(TextDraft).where(TextDraft.id != draft_id)) is None
    page = page_text(admin.get(f"/admin/drafts/{draft_id}"))
    assert "At most one a week." in page
    assert 'class="diff--added"' in page
    assert "A data protection officer who did not write this draft must review it." in page


def test_the_author_cannot_approve_and_a_dpo_publishes(as_role, db_session, make_account, notary):
    _consumer, purpose = _grant(db_session, make_account, notary)
    admin, _ = as_role("admin")
    draft_id = _draft(admin)
    refused = post(
        admin, f"/admin/drafts/{draft_id}/approve", {"comment": ""}, f"/admin/drafts/{draft_id}"
    )
    assert refused.status_code == 422
    assert "You wrote this draft: another staff member must review it." in page_text(refused)
    dpo, _ = as_role("dpo")
    approved = post(
        dpo, f"/admin/drafts/{draft_id}/approve", {"comment": "Fine."}, f"/admin/drafts/{draft_id}"
    )
    assert approved.status_code == 302
    db_session.expire_all()
    assert purpose.current_version == 2
    draft = db_session.get(TextDraft, draft_id)
    assert (draft.status, draft.published_version) == (DraftStatus.PUBLISHED.value, 2)
    twice = post(
        dpo, f"/admin/drafts/{draft_id}/approve", {"comment": "x"}, f"/admin/drafts/{draft_id}"
    )
    assert twice.status_code == 302
    assert (
        db_session.scalar(
            select(PurposeVersion.version)
            .where(PurposeVersion.purpose_id == purpose.id)
            .order_by(PurposeVersion.version.desc())
        )
        == 2
    )
    actions = db_session.scalars(select(StaffAction.action).order_by(StaffAction.id)).all()
    assert actions == ["text_version.drafted", "text_version.approved", "text_version.published"]


def test_a_rejection_needs_a_comment(as_role, db_session):
    admin, _ = as_role("admin")
    draft_id = _draft(admin)
    dpo, _ = as_role("dpo")
    page = f"/admin/drafts/{draft_id}"
    empty = post(dpo, page + "/reject", {"comment": "  "}, page)
    assert empty.status_code == 422
    assert "Say in the comment why the draft is rejected." in page_text(empty)
    done = post(dpo, page + "/reject", {"comment": "Too vague."}, page)
    assert done.status_code == 302
    db_session.expire_all()
    assert db_session.get(TextDraft, draft_id).status == DraftStatus.REJECTED.value


def test_the_current_text_cannot_be_drafted(as_role):
    admin, _ = as_role("admin")
    page = page_text(admin.get(PURPOSE + "/draft"))
    import re

    fields = {
        name: re.search(rf'id="{name}"[^>]*value="([^"]*)"', page).group(1)
        for name in ("title_en", "title_fr")
    }
    texts = {
        name: re.search(rf'<textarea[^>]*id="{name}"[^>]*>\s*(.*?)</textarea>', page, re.S).group(1)
        for name in ("text_en", "text_fr")
    }
    import html

    data = {k: html.unescape(v) for k, v in {**fields, **texts}.items()}
    response = post(admin, PURPOSE + "/draft", data, PURPOSE + "/draft")
    assert response.status_code == 422
    assert "This is the current text" in page_text(response)


def test_a_blank_draft_gets_a_message_per_field(as_role):
    admin, _ = as_role("admin")
    response = post(
        admin,
        PURPOSE + "/draft",
        {"title_en": "", "title_fr": "", "text_en": "", "text_fr": ""},
        PURPOSE + "/draft",
    )
    assert response.status_code == 422
    text = page_text(response)
    for message in (
        "Enter the English title.",
        "Enter the French title.",
        "Enter the English text.",
        "Enter the French text.",
    ):
        assert message in text
