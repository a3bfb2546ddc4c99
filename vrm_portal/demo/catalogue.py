"""The demo brand group's catalogue (three fictional brands), as an operator would write it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.brands.models import Brand
from vrm_portal.consent.catalogue import CatalogueSpec, ImportReport, import_catalogue
from vrm_portal.consent.models import Purpose

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")


def demo_catalogue() -> CatalogueSpec:
    return CatalogueSpec.model_validate_json(CATALOGUE_FILE.read_text(encoding="utf-8"))


def load_demo_catalogue(session: Session) -> ImportReport:
    return import_catalogue(session, demo_catalogue())


def date_demo_catalogue(session: Session, published_at: datetime) -> None:
    """Date the demo brands, their purposes and texts back to ``published_at``.

    The demo history that follows is dated in the past; its consents must go to texts
    that already existed. Dates only move back, never forward, and later versions keep
    their order (version n is dated n - 1 minutes after ``published_at``).
    """
    slugs = [spec.slug for spec in demo_catalogue().brands]
    brands = session.scalars(select(Brand).where(Brand.slug.in_(slugs))).all()
    for brand in brands:
        brand.created_at = min(brand.created_at, published_at)
    purposes = session.scalars(
        select(Purpose).where(Purpose.brand_id.in_([brand.id for brand in brands]))
    )
    for purpose in purposes:
        purpose.created_at = min(purpose.created_at, published_at)
        for version in purpose.versions:
            dated = published_at + timedelta(minutes=version.version - 1)
            version.published_at = min(version.published_at, dated)
    session.flush()
