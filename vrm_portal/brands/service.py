"""Looking up brands and the pairwise identifiers consumers have towards them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.brands.models import Brand, BrandRelationship


def list_brands(session: Session) -> list[Brand]:
    return list(session.scalars(select(Brand).order_by(Brand.name)))


def brand_by_slug(session: Session, slug: str) -> Brand | None:
    return session.scalar(select(Brand).where(Brand.slug == slug))


def relationship_with(session: Session, account_id: int, brand: Brand) -> BrandRelationship:
    """The consumer's relationship with ``brand``, created on first use."""
    existing = session.scalar(
        select(BrandRelationship).where(
            BrandRelationship.account_id == account_id, BrandRelationship.brand_id == brand.id
        )
    )
    if existing is not None:
        return existing
    created = BrandRelationship(account_id=account_id, brand_id=brand.id)
    session.add(created)
    session.flush()
    return created


def pairwise_id_for(session: Session, account_id: int, brand: Brand) -> str:
    return relationship_with(session, account_id, brand).pairwise_id
