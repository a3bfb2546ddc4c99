"""The demo brand group's catalogue (three fictional brands), as an operator would write it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from vrm_portal.consent.catalogue import CatalogueSpec, ImportReport, import_catalogue

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")


def demo_catalogue() -> CatalogueSpec:
    return CatalogueSpec.model_validate_json(CATALOGUE_FILE.read_text(encoding="utf-8"))


def load_demo_catalogue(session: Session) -> ImportReport:
    return import_catalogue(session, demo_catalogue())
