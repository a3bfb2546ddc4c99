"""Changing the catalogue from the console: brands, purposes (and their retirement),
topics, and the catalogue file's import and export.

Every change is flushed in the caller's transaction together with its line in the staff
audit trail (``audit.service.record``), so neither exists without the other. New texts
of existing purposes never go through here: they are drafts, published only after a
second person's review (``admin.drafts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.admin.errors import AlreadyExists, NothingToDo
from vrm_portal.audit import service as audit
from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.consent import service as consent
from vrm_portal.consent.catalogue import (
    BrandSpec,
    CatalogueSpec,
    ImportReport,
    PurposeSpec,
    PurposeText,
    TopicSpec,
    content_hash,
    import_catalogue,
    publish_version,
)
from vrm_portal.consent.models import (
    CollectionMethod,
    ConsentState,
    ConsentStatus,
    Purpose,
    PurposeVersion,
)
from vrm_portal.interests.models import Topic

BRAND_FIELDS = (
    "name",
    "description_en",
    "description_fr",
    "controller_name",
    "controller_address",
    "controller_email",
    "policy_url",
    "jurisdiction",
)
PURPOSE_FIELDS = ("category", "legal_basis", "validity_days", "shares_with_third_parties")


def _values(obj: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


# ---- brands -------------------------------------------------------------------------


def create_brand(session: Session, actor: Account, slug: str, fields: dict[str, Any]) -> Brand:
    """A new brand (``AlreadyExists`` when the slug is taken)."""
    if session.scalar(select(Brand.id).where(Brand.slug == slug)) is not None:
        raise AlreadyExists("slug")
    brand = Brand(slug=slug, **{name: fields[name] for name in BRAND_FIELDS})
    session.add(brand)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="brand.created",
        object_type="brand",
        object_id=slug,
        after=_values(brand, BRAND_FIELDS),
    )
    return brand


def update_brand(session: Session, actor: Account, brand: Brand, fields: dict[str, Any]) -> bool:
    """Change the brand's details; False (nothing recorded) when nothing changed."""
    before = _values(brand, BRAND_FIELDS)
    after = {name: fields[name] for name in BRAND_FIELDS}
    if before == after:
        return False
    for name, value in after.items():
        setattr(brand, name, value)
    session.flush()
    changed = [name for name in BRAND_FIELDS if before[name] != after[name]]
    audit.record(
        session,
        actor=actor,
        action="brand.updated",
        object_type="brand",
        object_id=brand.slug,
        before={name: before[name] for name in changed},
        after={name: after[name] for name in changed},
    )
    return True


# ---- purposes -----------------------------------------------------------------------


def purposes_of(session: Session, brand: Brand) -> list[Purpose]:
    return list(
        session.scalars(
            select(Purpose)
            .where(Purpose.brand_id == brand.id)
            .order_by(Purpose.position, Purpose.id)
        )
    )


def current_text(session: Session, purpose: Purpose) -> PurposeVersion | None:
    return session.scalar(
        select(PurposeVersion).where(
            PurposeVersion.purpose_id == purpose.id,
            PurposeVersion.version == purpose.current_version,
        )
    )


def create_purpose(
    session: Session,
    actor: Account,
    brand: Brand,
    key: str,
    fields: dict[str, Any],
    text: PurposeText,
) -> Purpose:
    """A new purpose with its first text (version 1: nobody has agreed to it yet, so it
    needs no review)."""
    taken = session.scalar(
        select(Purpose.id).where(Purpose.brand_id == brand.id, Purpose.key == key)
    )
    if taken is not None:
        raise AlreadyExists("key")
    position = session.scalar(
        select(func.coalesce(func.max(Purpose.position) + 1, 0)).where(Purpose.brand_id == brand.id)
    )
    purpose = Purpose(
        brand_id=brand.id,
        key=key,
        current_version=0,
        position=int(position or 0),
        **{name: fields[name] for name in PURPOSE_FIELDS},
    )
    session.add(purpose)
    session.flush()
    version = publish_version(session, purpose, text)
    assert version is not None
    audit.record(
        session,
        actor=actor,
        action="purpose.created",
        object_type="purpose",
        object_id=f"{brand.slug}/{key}",
        after={**_values(purpose, PURPOSE_FIELDS), "content_hash": version.content_hash},
    )
    return purpose


def update_purpose(
    session: Session, actor: Account, purpose: Purpose, fields: dict[str, Any]
) -> bool:
    """Change a purpose's metadata (not its text); False when nothing changed."""
    before = _values(purpose, PURPOSE_FIELDS)
    after = {name: fields[name] for name in PURPOSE_FIELDS}
    if before == after:
        return False
    for name, value in after.items():
        setattr(purpose, name, value)
    session.flush()
    changed = [name for name in PURPOSE_FIELDS if before[name] != after[name]]
    audit.record(
        session,
        actor=actor,
        action="purpose.updated",
        object_type="purpose",
        object_id=f"{purpose.brand.slug}/{purpose.key}",
        before={name: before[name] for name in changed},
        after={name: after[name] for name in changed},
    )
    return True


def _standing_states(purpose: Purpose) -> Any:
    return select(ConsentState).where(
        ConsentState.purpose_id == purpose.id,
        ConsentState.status.in_([ConsentStatus.GRANTED.value, ConsentStatus.PENDING.value]),
    )


def consumers_affected_by_retirement(session: Session, purpose: Purpose) -> int:
    """How many consumers have given (or are confirming) this purpose."""
    subquery = _standing_states(purpose).subquery()
    return int(session.execute(select(func.count()).select_from(subquery)).scalar_one())


def retire_purpose(
    session: Session, actor: Account, purpose: Purpose, notary: consent.Notary, *, reason: str
) -> int:
    """Stop asking for ``purpose`` and withdraw every consent to it (method
    ``purpose-retired``): one ledger event, receipt and feed entry per consent, through
    the consent service, all in the caller's transaction. Returns how many."""
    if purpose.retired_at is not None:
        raise NothingToDo("retired")
    now = utcnow()
    purpose.retired_at = now
    session.flush()
    withdrawn = 0
    account_ids = [state.account_id for state in session.scalars(_standing_states(purpose))]
    for account_id in sorted(account_ids):
        account = session.get(Account, account_id)
        assert account is not None
        change = consent.Change(
            CollectionMethod.PURPOSE_RETIRED, account.locale or "en", now, actor="staff"
        )
        result = consent.withdraw(session, notary, account, purpose, change=change)
        if result.outcome is consent.Outcome.RECORDED:
            withdrawn += 1
    audit.record(
        session,
        actor=actor,
        action="purpose.retired",
        object_type="purpose",
        object_id=f"{purpose.brand.slug}/{purpose.key}",
        after={"retired_at": now, "consents_withdrawn": withdrawn},
        reason=reason,
    )
    return withdrawn


# ---- topics -------------------------------------------------------------------------


def topics_of(session: Session, brand: Brand) -> list[Topic]:
    return list(
        session.scalars(
            select(Topic).where(Topic.brand_id == brand.id).order_by(Topic.position, Topic.id)
        )
    )


def add_topic(
    session: Session, actor: Account, brand: Brand, key: str, label_en: str, label_fr: str
) -> Topic:
    if session.scalar(select(Topic.id).where(Topic.brand_id == brand.id, Topic.key == key)):
        raise AlreadyExists("key")
    position = session.scalar(
        select(func.coalesce(func.max(Topic.position) + 1, 0)).where(Topic.brand_id == brand.id)
    )
    topic = Topic(
        brand_id=brand.id,
        key=key,
        label_en=label_en,
        label_fr=label_fr,
        position=int(position or 0),
    )
    session.add(topic)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="topic.added",
        object_type="topic",
        object_id=f"{brand.slug}/{key}",
        after={"label_en": label_en, "label_fr": label_fr},
    )
    return topic


def rename_topic(
    session: Session, actor: Account, topic: Topic, label_en: str, label_fr: str
) -> bool:
    before = {"label_en": topic.label_en, "label_fr": topic.label_fr}
    after = {"label_en": label_en, "label_fr": label_fr}
    if before == after:
        return False
    topic.label_en, topic.label_fr = label_en, label_fr
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="topic.renamed",
        object_type="topic",
        object_id=f"{topic.brand.slug}/{topic.key}",
        before=before,
        after=after,
    )
    return True


def set_topic_retired(session: Session, actor: Account, topic: Topic, retired: bool) -> None:
    """Retire a topic (no longer offered; past choices are kept) or offer it again."""
    if topic.retired == retired:
        raise NothingToDo("unchanged")
    topic.retired = retired
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="topic.retired" if retired else "topic.restored",
        object_type="topic",
        object_id=f"{topic.brand.slug}/{topic.key}",
        before={"retired": not retired},
        after={"retired": retired},
    )


# ---- the catalogue file -------------------------------------------------------------


def export_catalogue(session: Session) -> CatalogueSpec:
    """The whole catalogue as the file ``vrm import-catalogue`` reads: every brand, its
    purposes still asked (with their current text) and its topics still offered."""
    brands = []
    for brand in session.scalars(select(Brand).order_by(Brand.id)):
        purposes = []
        for purpose in purposes_of(session, brand):
            version = current_text(session, purpose)
            if purpose.retired_at is not None or version is None:
                continue
            purposes.append(
                PurposeSpec(
                    key=purpose.key,
                    category=purpose.category,  # type: ignore[arg-type]
                    legal_basis=purpose.legal_basis,  # type: ignore[arg-type]
                    validity_days=purpose.validity_days,
                    shares_with_third_parties=purpose.shares_with_third_parties,
                    text=PurposeText(
                        title_en=version.title_en,
                        title_fr=version.title_fr,
                        text_en=version.text_en,
                        text_fr=version.text_fr,
                    ),
                )
            )
        topics = [
            TopicSpec(key=topic.key, label_en=topic.label_en, label_fr=topic.label_fr)
            for topic in topics_of(session, brand)
            if not topic.retired
        ]
        brands.append(
            BrandSpec(
                slug=brand.slug,
                **_values(brand, BRAND_FIELDS),
                purposes=purposes,
                topics=topics,
            )
        )
    return CatalogueSpec(brands=brands)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an imported file: where (a dotted path) and what."""

    path: str
    message: str


def review_import(session: Session, spec: CatalogueSpec) -> list[Problem]:
    """What the console refuses in a valid file: a changed text of an existing purpose
    (it must go through a reviewed draft), and a retired purpose."""
    problems = []
    for b, brand_spec in enumerate(spec.brands):
        brand = session.scalar(select(Brand).where(Brand.slug == brand_spec.slug))
        if brand is None:
            continue
        for p, purpose_spec in enumerate(brand_spec.purposes):
            purpose = session.scalar(
                select(Purpose).where(Purpose.brand_id == brand.id, Purpose.key == purpose_spec.key)
            )
            if purpose is None:
                continue
            where = f"brands.{b}.purposes.{p}"
            if purpose.retired_at is not None:
                problems.append(Problem(where + ".key", "retired"))
                continue
            version = current_text(session, purpose)
            if version is not None and version.content_hash != content_hash(purpose_spec.text):
                problems.append(Problem(where + ".text", "text-changed"))
    return problems


def import_file(session: Session, actor: Account, spec: CatalogueSpec) -> ImportReport:
    """Import a checked catalogue (see ``review_import``) and record it in the trail."""
    report = import_catalogue(session, spec)
    audit.record(
        session,
        actor=actor,
        action="catalogue.imported",
        object_type="catalogue",
        after={
            "brands_created": report.brands_created,
            "purposes_created": report.purposes_created,
            "topics_created": report.topics_created,
            "brands": [brand.slug for brand in spec.brands],
        },
    )
    return report
