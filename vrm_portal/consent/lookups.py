"""What a consent change reads before it writes: the purpose and its text, the
consumer's state and pairwise id, and the change's lock (see CONTRIBUTING, "The write
path"). Published texts never change: the session keeps those it loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, event, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand, BrandRelationship
from vrm_portal.consent import ledger, sequencer
from vrm_portal.consent.errors import UnknownPurpose
from vrm_portal.consent.models import ConsentState, Purpose, PurposeVersion


def find_purpose(session: Session, brand_slug: str, purpose_key: str) -> Purpose:
    purpose = session.scalar(
        select(Purpose)
        .join(Brand, Brand.id == Purpose.brand_id)
        .where(Brand.slug == brand_slug, Purpose.key == purpose_key, Purpose.current_version > 0)
    )
    if purpose is None:
        raise UnknownPurpose(f"{brand_slug}/{purpose_key}")
    return purpose


def find_choice(
    session: Session, brand_slug: str, purpose_key: str
) -> tuple[Brand, Purpose | None] | None:
    """The brand ``brand_slug`` and its published purpose ``purpose_key`` (None when it has
    none), in one statement with the purpose's current text (kept, see ``version_of``).
    None when there is no such brand. The caller keeps the brand referenced: the session's
    identity map then serves ``purpose.brand`` without a query."""
    row = session.execute(
        select(Brand, Purpose, PurposeVersion)
        .outerjoin(
            Purpose,
            and_(
                Purpose.brand_id == Brand.id,
                Purpose.key == purpose_key,
                Purpose.current_version > 0,
            ),
        )
        .outerjoin(
            PurposeVersion,
            and_(
                PurposeVersion.purpose_id == Purpose.id,
                PurposeVersion.version == Purpose.current_version,
            ),
        )
        .where(Brand.slug == brand_slug)
    ).first()
    if row is None:
        return None
    brand, purpose, version = row
    if purpose is not None and version is not None:
        keep_version(session, version)
    return brand, purpose


_VERSIONS = "vrm_purpose_versions"


def keep_version(session: Session, version: PurposeVersion) -> None:
    cache: dict[tuple[int, int], PurposeVersion] = session.info.setdefault(_VERSIONS, {})
    cache[(version.purpose_id, version.version)] = version


@event.listens_for(Session, "after_soft_rollback")
def _forget_versions(session: Session, _transaction: object) -> None:
    """A rollback may undo a version this session loaded or published: forget them all."""
    session.info.pop(_VERSIONS, None)


def version_of(session: Session, purpose: Purpose, number: int | None = None) -> PurposeVersion:
    """A published text of ``purpose`` (the current one by default).

    Published texts never change, so the session keeps those it has loaded.
    """
    key = (purpose.id, number or purpose.current_version)
    cache: dict[tuple[int, int], PurposeVersion] = session.info.setdefault(_VERSIONS, {})
    found = cache.get(key)
    if found is None:
        found = session.scalar(
            select(PurposeVersion).where(
                PurposeVersion.purpose_id == key[0], PurposeVersion.version == key[1]
            )
        )
        if found is None:
            raise UnknownPurpose(f"{purpose.key} v{key[1]}")
        cache[key] = found
    return found


def _state(session: Session, account: Account, purpose: Purpose) -> ConsentState | None:
    return session.scalar(
        select(ConsentState)
        .where(ConsentState.account_id == account.id, ConsentState.purpose_id == purpose.id)
        .execution_options(populate_existing=True)
    )


@dataclass(frozen=True)
class _Standing:
    """What a change must know of the consumer, read after the ledger head is locked: their
    current state for the purpose and their pairwise id towards its brand (None if none)."""

    state: ConsentState | None
    pairwise_id: str | None


def _lock(session: Session, account_ids: list[int]) -> ledger.Head | None:
    """Take a change's lock, so that two identical requests racing each other record one
    event, never two: inline (``sequencer.INLINE``), the ledger head, returned; with a
    worker sequencer, the consumers' account rows (ascending id), and None."""
    if sequencer.mode() == sequencer.INLINE:
        return ledger.lock_head(session)
    # FOR NO KEY UPDATE: the foreign key checks of the sequencer's writes take KEY SHARE
    # locks on account rows, which this must not block (that would be a deadlock).
    session.execute(
        select(Account.id)
        .where(Account.id.in_(sorted(set(account_ids))))
        .order_by(Account.id)
        .with_for_update(key_share=True)
    ).all()
    return None


def _inline_head(session: Session) -> ledger.Head | None:
    """The ledger head, locked, when the app integrates inline; None with a worker."""
    return ledger.lock_head(session) if sequencer.mode() == sequencer.INLINE else None


def _standing(
    session: Session, account: Account, purpose: Purpose, *, lock: bool = False
) -> _Standing:
    """The consumer's state and pairwise id, in one statement; with ``lock``, it also
    locks the account row (the change's lock when the sequencer is a worker)."""
    query = (
        select(ConsentState, BrandRelationship.pairwise_id)
        .select_from(Account)
        .outerjoin(
            ConsentState,
            and_(ConsentState.account_id == Account.id, ConsentState.purpose_id == purpose.id),
        )
        .outerjoin(
            BrandRelationship,
            and_(
                BrandRelationship.account_id == Account.id,
                BrandRelationship.brand_id == purpose.brand_id,
            ),
        )
        .where(Account.id == account.id)
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update(of=Account, key_share=True)  # see ``_lock``
    row = session.execute(query).one()
    return _Standing(row[0], row[1])
