"""Erasures running while other consumers change their plans and consents, on a scratch
database with a connection per thread. On PostgreSQL they really run in parallel: an
erasure locks the ledger head and then every brand it will write to, in ascending id,
like every other writer, so nothing deadlocks and every brand's feed stays gapless."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import scratch_database
from vrm_portal import schema
from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand, BrandChange, BrandRelationship
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger
from vrm_portal.consent import service as consent_service
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change, Notary
from vrm_portal.db import READ_ONLY, create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.interests import service as interests
from vrm_portal.requests import erasure

LEAVING = 6
STAYING = 4
ROUNDS = 12
#: Granted brand by brand in descending id order, so that consent state ids (the order the
#: withdrawals run in) go against the brands' lock order.
GRANTS = [
    ("domaine-des-coteaux", "analytics"),
    ("maison-berlingot", "analytics"),
    ("aurore-automobiles", "analytics"),
]
ALL_BRANDS = frozenset(slug for slug, _key in GRANTS)


@pytest.fixture
def race_engine(database_url, tmp_path, notary: Notary) -> Iterator[Engine]:
    with scratch_database(database_url, tmp_path, "erasures_race") as url:
        engine = create_db_engine(url, pool_size=LEAVING + STAYING + 2)
        try:
            schema.upgrade(engine)
            with Session(engine) as session:
                load_demo_catalogue(session)
                change = Change(CollectionMethod.IMPORT, "en", utcnow())
                for n in range(LEAVING + STAYING):
                    account = Account(email=f"consumer{n}@example.com")
                    session.add(account)
                    session.flush()
                    for slug, key in GRANTS:
                        purpose = consent_service.find_purpose(session, slug, key)
                        consent_service.grant(
                            session, notary, account, purpose, shown_version=1, change=change
                        )
                session.commit()
            yield engine
        finally:
            engine.dispose()


def test_erasures_and_plan_changes_in_parallel_keep_every_feed_whole(
    race_engine: Engine, notary: Notary
) -> None:
    engine = race_engine
    start = threading.Barrier(LEAVING + STAYING)
    with Session(engine) as session:
        pairwise = {
            email: ids for email, ids in _pairwise_by_email(session, range(LEAVING)).items()
        }

    def leave(n: int) -> None:
        start.wait(timeout=60)
        with Session(engine) as session:
            account = session.scalar(
                select(Account).where(Account.email == f"consumer{n}@example.com")
            )
            assert account is not None
            erasure.erase_now(session, notary, account, utcnow())
            session.commit()

    def plan(n: int) -> None:
        start.wait(timeout=60)
        for round_no in range(ROUNDS):
            with Session(engine) as session:
                account = session.scalar(
                    select(Account).where(Account.email == f"consumer{n}@example.com")
                )
                assert account is not None
                intent = interests.state_intent(
                    session,
                    account,
                    interests.IntentInput(
                        category="gift",
                        summary=f"Round {round_no}",
                        horizon_months=1,
                        budget_min=None,
                        budget_max=None,
                        brand_slugs=ALL_BRANDS,
                    ),
                    utcnow().date(),
                )
                session.commit()
                interests.withdraw_intent(session, account, intent.id, utcnow())
                session.commit()

    with ThreadPoolExecutor(max_workers=LEAVING + STAYING) as pool:
        futures = [pool.submit(leave, n) for n in range(LEAVING)]
        futures += [pool.submit(plan, n) for n in range(LEAVING, LEAVING + STAYING)]
        for future in futures:
            future.result(timeout=300)  # a deadlock would raise here

    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Account)) == STAYING
        for brand in session.scalars(select(Brand)):
            seqs = session.scalars(
                select(BrandChange.seq)
                .where(BrandChange.brand_id == brand.id)
                .order_by(BrandChange.seq)
            ).all()
            assert seqs == list(range(1, brand.feed_seq + 1)), brand.slug
        for email, ids in pairwise.items():
            for pairwise_id in ids:
                kinds = session.scalars(
                    select(BrandChange.kind)
                    .where(BrandChange.pairwise_id == pairwise_id)
                    .order_by(BrandChange.seq)
                ).all()
                assert kinds == ["consent.granted", "consent.withdrawn", "consumer.erased"], email
    with engine.connect().execution_options(**READ_ONLY) as connection:
        assert ledger.verify(connection).ok


def _pairwise_by_email(session: Session, numbers: range) -> dict[str, list[str]]:
    rows = session.execute(
        select(Account.email, BrandRelationship.pairwise_id)
        .join(BrandRelationship, BrandRelationship.account_id == Account.id)
        .where(Account.email.in_([f"consumer{n}@example.com" for n in numbers]))
    ).all()
    found: dict[str, list[str]] = {}
    for email, pairwise_id in rows:
        found.setdefault(email, []).append(pairwise_id)
    return found
