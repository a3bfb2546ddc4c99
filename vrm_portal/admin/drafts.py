"""New text versions under four-eyes review.

An admin drafts the French and English text of a purpose; a *different* staff member,
a DPO, approves or rejects it with a comment. Approval publishes the draft through the
catalogue's one publishing path (``consent.catalogue.publish_version``), which queues the
renewal notices in the same transaction. Draft, review and publication are each a line
in the staff audit trail.

The draft's row is locked while it is reviewed, so two reviews of the same draft (a
double submit, two DPOs at once) publish once.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.admin.errors import NotAllowed, NothingToDo, Stale
from vrm_portal.admin.models import DraftStatus, TextDraft
from vrm_portal.audit import service as audit
from vrm_portal.clock import utcnow
from vrm_portal.consent.catalogue import PurposeText, content_hash, publish_version
from vrm_portal.consent.models import Purpose, PurposeVersion
from vrm_portal.consent.renewal import count_due

TEXT_FIELDS = ("title_en", "title_fr", "text_en", "text_fr")


def _label(purpose: Purpose) -> str:
    return f"{purpose.brand.slug}/{purpose.key}"


def _current(session: Session, purpose: Purpose) -> PurposeVersion | None:
    return session.scalar(
        select(PurposeVersion).where(
            PurposeVersion.purpose_id == purpose.id,
            PurposeVersion.version == purpose.current_version,
        )
    )


def pending_draft(session: Session, purpose: Purpose) -> TextDraft | None:
    return session.scalar(
        select(TextDraft).where(
            TextDraft.purpose_id == purpose.id, TextDraft.status == DraftStatus.PENDING.value
        )
    )


def pending_drafts(session: Session) -> list[TextDraft]:
    return list(
        session.scalars(
            select(TextDraft)
            .where(TextDraft.status == DraftStatus.PENDING.value)
            .order_by(TextDraft.created_at, TextDraft.id)
        )
    )


def recent_drafts(session: Session, purpose: Purpose, limit: int = 20) -> list[TextDraft]:
    return list(
        session.scalars(
            select(TextDraft)
            .where(TextDraft.purpose_id == purpose.id)
            .order_by(TextDraft.id.desc())
            .limit(limit)
        )
    )


def renewals_needed(session: Session, purpose: Purpose) -> int:
    """How many consumers would need to renew if a new text were published now."""
    return count_due(session, purpose, purpose.current_version + 1)


def create_draft(
    session: Session, author: Account, purpose: Purpose, text: PurposeText
) -> TextDraft:
    """Draft a new text. Refused (``NothingToDo``) when it is the current text, or when
    a draft of this purpose already waits for review (one at a time: also what makes a
    double submit create one draft); a retired purpose takes no new text."""
    if purpose.retired_at is not None:
        raise NotAllowed("retired")
    session.execute(select(Purpose.id).where(Purpose.id == purpose.id).with_for_update())
    if pending_draft(session, purpose) is not None:
        raise NothingToDo("pending")
    current = _current(session, purpose)
    if current is not None and current.content_hash == content_hash(text):
        raise NothingToDo("same-text")
    draft = TextDraft(
        purpose_id=purpose.id,
        base_version=purpose.current_version,
        author_id=author.id,
        status=DraftStatus.PENDING.value,
        review_comment="",
        **text.model_dump(),
    )
    session.add(draft)
    session.flush()
    audit.record(
        session,
        actor=author,
        action="text_version.drafted",
        object_type="text_draft",
        object_id=draft.id,
        after={"purpose": _label(purpose), "base_version": draft.base_version},
    )
    return draft


def _locked(session: Session, draft: TextDraft) -> TextDraft:
    session.refresh(draft, with_for_update=True)
    if draft.status != DraftStatus.PENDING.value:
        raise NothingToDo(draft.status)
    return draft


def _check_reviewer(draft: TextDraft, reviewer: Account) -> None:
    if reviewer.id == draft.author_id:
        raise NotAllowed("own-draft")
    if reviewer.staff_role != StaffRole.DPO.value:
        raise NotAllowed("not-dpo")


def may_review(draft: TextDraft, reviewer: Account) -> bool:
    try:
        _check_reviewer(draft, reviewer)
    except NotAllowed:
        return False
    return draft.status == DraftStatus.PENDING.value


def approve(session: Session, reviewer: Account, draft: TextDraft, comment: str) -> PurposeVersion:
    """Approve and publish ``draft`` as the purpose's next version."""
    _check_reviewer(draft, reviewer)
    _locked(session, draft)
    purpose = draft.purpose
    if purpose.current_version != draft.base_version:
        draft.status = DraftStatus.SUPERSEDED.value
        session.flush()
        raise Stale("outdated")
    if purpose.retired_at is not None:
        raise NotAllowed("retired")
    renewals = renewals_needed(session, purpose)
    text = PurposeText(**{name: getattr(draft, name) for name in TEXT_FIELDS})
    version = publish_version(session, purpose, text)
    if version is None:  # the draft's text became the current one meanwhile
        draft.status = DraftStatus.SUPERSEDED.value
        session.flush()
        raise Stale("same-text")
    now = utcnow()
    draft.status = DraftStatus.PUBLISHED.value
    draft.reviewer_id = reviewer.id
    draft.reviewed_at = now
    draft.review_comment = comment
    draft.published_version = version.version
    session.flush()
    audit.record(
        session,
        actor=reviewer,
        action="text_version.approved",
        object_type="text_draft",
        object_id=draft.id,
        after={"purpose": _label(purpose), "author_id": draft.author_id},
        reason=comment,
    )
    audit.record(
        session,
        actor=reviewer,
        action="text_version.published",
        object_type="purpose",
        object_id=_label(purpose),
        before={"version": draft.base_version},
        after={
            "version": version.version,
            "content_hash": version.content_hash,
            "renewals_due": renewals,
        },
    )
    return version


def reject(session: Session, reviewer: Account, draft: TextDraft, comment: str) -> None:
    """Reject ``draft``; the comment (required) says why."""
    _check_reviewer(draft, reviewer)
    if not comment.strip():
        raise NotAllowed("comment-required")
    _locked(session, draft)
    draft.status = DraftStatus.REJECTED.value
    draft.reviewer_id = reviewer.id
    draft.reviewed_at = utcnow()
    draft.review_comment = comment
    session.flush()
    audit.record(
        session,
        actor=reviewer,
        action="text_version.rejected",
        object_type="text_draft",
        object_id=draft.id,
        after={"purpose": _label(draft.purpose)},
        reason=comment,
    )


@dataclass(frozen=True)
class DiffRow:
    """One line of the side-by-side comparison; ``kind`` is equal, changed, added or removed."""

    kind: str
    old: str
    new: str


@dataclass(frozen=True)
class FieldDiff:
    name: str
    rows: list[DiffRow]
    changed: bool


def side_by_side(old: str, new: str) -> list[DiffRow]:
    """The lines of ``old`` and ``new`` paired up (``difflib``), for a two-column table."""
    a, b = old.splitlines() or [""], new.splitlines() or [""]
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(
                DiffRow("equal", a[i], b[j])
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
            continue
        olds, news = a[i1:i2], b[j1:j2]
        for k in range(max(len(olds), len(news))):
            left = olds[k] if k < len(olds) else None
            right = news[k] if k < len(news) else None
            if left is None:
                rows.append(DiffRow("added", "", right or ""))
            elif right is None:
                rows.append(DiffRow("removed", left, ""))
            else:
                rows.append(DiffRow("changed", left, right))
    return rows


def draft_diff(session: Session, draft: TextDraft) -> list[FieldDiff]:
    """Each of the draft's four fields against the version it was drafted from."""
    base = session.scalar(
        select(PurposeVersion).where(
            PurposeVersion.purpose_id == draft.purpose_id,
            PurposeVersion.version == draft.base_version,
        )
    )
    diffs = []
    for name in TEXT_FIELDS:
        old = getattr(base, name) if base is not None else ""
        new = getattr(draft, name)
        diffs.append(FieldDiff(name, side_by_side(old, new), old != new))
    return diffs
