"""The brand group's catalogue: brands, purposes with versioned texts, and topics.

Operators describe the catalogue in a JSON file (``vrm import-catalogue``); importing is
idempotent: an unchanged text keeps its version, a changed text publishes the next one,
after which earlier consents show as "needs your renewal".
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.consent.ledger import canonical_json
from vrm_portal.consent.models import LegalBasis, Purpose, PurposeCategory, PurposeVersion
from vrm_portal.consent.renewal import queue_renewal_notices
from vrm_portal.interests.models import Topic

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


#: Characters no text of the catalogue may hold (line breaks and tabs are allowed): a NUL
#: cannot even be stored by PostgreSQL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        return value


class PurposeText(_Strict):
    title_en: Title
    title_fr: Title
    text_en: Text
    text_fr: Text


class PurposeSpec(_Strict):
    key: Key
    category: PurposeCategory
    legal_basis: LegalBasis = LegalBasis.CONSENT
    validity_days: int = Field(default=730, ge=1, le=3650)
    shares_with_third_parties: bool = False
    text: PurposeText


class TopicSpec(_Strict):
    key: Key
    label_en: Label
    label_fr: Label


class BrandSpec(_Strict):
    slug: Key
    name: Label
    description_en: str = Field(default="", max_length=500)
    description_fr: str = Field(default="", max_length=500)
    controller_name: Title
    controller_address: str = Field(default="", max_length=300)
    controller_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")]
    policy_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=500)]
    jurisdiction: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "FR"
    purposes: list[PurposeSpec] = Field(default_factory=list)
    topics: list[TopicSpec] = Field(default_factory=list)

    @field_validator("purposes", "topics")
    @classmethod
    def _keys_unique(cls, items: list[PurposeSpec] | list[TopicSpec]) -> Any:
        _refuse_repeats([item.key for item in items], "key")
        return items


class CatalogueSpec(_Strict):
    brands: list[BrandSpec]

    @field_validator("brands")
    @classmethod
    def _slugs_unique(cls, brands: list[BrandSpec]) -> list[BrandSpec]:
        _refuse_repeats([brand.slug for brand in brands], "slug")
        return brands


def _refuse_repeats(keys: list[str], name: str) -> None:
    """A key given twice in one list would be imported twice over itself: refused."""
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"the {name} {key!r} is given more than once")
        seen.add(key)


def content_hash(text: PurposeText) -> str:
    """SHA-256 hex of the canonical JSON of a purpose's titles and texts."""
    return hashlib.sha256(canonical_json(text.model_dump()).encode()).hexdigest()


@dataclass
class ImportReport:
    brands_created: list[str] = field(default_factory=list)
    purposes_created: list[str] = field(default_factory=list)
    versions_published: list[str] = field(default_factory=list)
    topics_created: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.brands_created
            or self.purposes_created
            or self.versions_published
            or self.topics_created
        )


def publish_version(session: Session, purpose: Purpose, text: PurposeText) -> PurposeVersion | None:
    """Make ``text`` the purpose's current version; None when it is the current text already.

    A version after the first also enqueues, in the same transaction, the job that tells
    the brand which consents now need renewal (``consent/renewal.py``).
    """
    digest = content_hash(text)
    latest = session.scalar(
        select(PurposeVersion)
        .where(PurposeVersion.purpose_id == purpose.id)
        .order_by(PurposeVersion.version.desc())
        .limit(1)
    )
    if latest is not None and latest.content_hash == digest:
        return None
    number = latest.version + 1 if latest is not None else 1
    version = PurposeVersion(
        purpose_id=purpose.id,
        version=number,
        content_hash=digest,
        published_at=utcnow(),
        **text.model_dump(),
    )
    session.add(version)
    purpose.current_version = number
    session.flush()
    if latest is not None:
        queue_renewal_notices(session, purpose, number)
    return version


def import_catalogue(session: Session, catalogue: CatalogueSpec) -> ImportReport:
    """Create or update brands, purposes and topics from ``catalogue`` (idempotent)."""
    report = ImportReport()
    for spec in catalogue.brands:
        brand = session.scalar(select(Brand).where(Brand.slug == spec.slug))
        attributes = spec.model_dump(exclude={"slug", "purposes", "topics"})
        if brand is None:
            brand = Brand(slug=spec.slug, **attributes)
            session.add(brand)
            session.flush()
            report.brands_created.append(spec.slug)
        else:
            for name, value in attributes.items():
                setattr(brand, name, value)
        for position, purpose_spec in enumerate(spec.purposes):
            _import_purpose(session, brand, purpose_spec, position, report)
        for position, topic_spec in enumerate(spec.topics):
            _import_topic(session, brand, topic_spec, position, report)
    session.flush()
    return report


def _import_purpose(
    session: Session, brand: Brand, spec: PurposeSpec, position: int, report: ImportReport
) -> None:
    purpose = session.scalar(
        select(Purpose).where(Purpose.brand_id == brand.id, Purpose.key == spec.key)
    )
    label = f"{brand.slug}/{spec.key}"
    if purpose is None:
        purpose = Purpose(brand_id=brand.id, key=spec.key, current_version=0)
        session.add(purpose)
        report.purposes_created.append(label)
    purpose.category = spec.category.value
    purpose.legal_basis = spec.legal_basis.value
    purpose.validity_days = spec.validity_days
    purpose.shares_with_third_parties = spec.shares_with_third_parties
    purpose.position = position
    session.flush()
    version = publish_version(session, purpose, spec.text)
    if version is not None:
        report.versions_published.append(f"{label} v{version.version}")


def _import_topic(
    session: Session, brand: Brand, spec: TopicSpec, position: int, report: ImportReport
) -> None:
    topic = session.scalar(select(Topic).where(Topic.brand_id == brand.id, Topic.key == spec.key))
    if topic is None:
        topic = Topic(brand_id=brand.id, key=spec.key)
        session.add(topic)
        report.topics_created.append(f"{brand.slug}/{spec.key}")
    topic.label_en = spec.label_en
    topic.label_fr = spec.label_fr
    topic.position = position
    topic.retired = False
    session.flush()
