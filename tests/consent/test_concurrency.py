"""Concurrent writers append to one chain: no fork, no gap, no lost or doubled change.

Each writer is a thread with its own connection and session on a scratch database of the
suite's engine. On PostgreSQL the writers really run in parallel and queue on the ledger
head's row lock; on SQLite they serialise through ``BEGIN IMMEDIATE`` and
``busy_timeout`` -- the result must be just as correct.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import scratch_database
from vrm_portal import schema
from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, service
from vrm_portal.consent.models import (
    CollectionMethod,
    ConsentEvent,
    ConsentReceipt,
    ConsentState,
    LedgerHead,
    Purpose,
)
from vrm_portal.consent.service import Change, Notary, Outcome
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue

WRITERS = 8
CHANGES_PER_WRITER = 30
ACCOUNTS = 4
#: Purposes without double opt-in, so every grant is recorded at once.
PURPOSES = [
    ("maison-berlingot", "sms-offers"),
    ("maison-berlingot", "partner-sharing"),
    ("maison-berlingot", "analytics"),
    ("aurore-automobiles", "partner-sharing"),
    ("aurore-automobiles", "postal-offers"),
    ("domaine-des-coteaux", "personalised-offers"),
]


@pytest.fixture
def ledger_engine(database_url, tmp_path) -> Iterator[Engine]:
    """A migrated scratch database with the demo catalogue and a few accounts."""
    with scratch_database(database_url, tmp_path, "ledger") as url:
        engine = create_db_engine(url, pool_size=WRITERS + 2, max_overflow=WRITERS)
        try:
            schema.upgrade(engine)
            with Session(engine) as session:
                load_demo_catalogue(session)
                for n in range(ACCOUNTS):
                    session.add(Account(email=f"writer{n}@example.com"))
                session.commit()
            yield engine
        finally:
            engine.dispose()


def emails() -> list[str]:
    return [f"writer{n}@example.com" for n in range(ACCOUNTS)]


def in_parallel(count: int, work: Callable[[int], int]) -> list[int]:
    """Run ``work(0..count-1)`` in ``count`` threads at once; re-raise any failure."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(work, index) for index in range(count)]
        return [future.result(timeout=300) for future in futures]


def load(session: Session, email: str, brand: str, key: str) -> tuple[Account, Purpose]:
    account = session.scalar(select(Account).where(Account.email == email))
    assert account is not None
    return account, service.find_purpose(session, brand, key)


def loaded(engine: Engine, email: str, brand: str, key: str) -> tuple[Session, Account, Purpose]:
    """A session holding the account and the purpose, with no transaction open yet.

    The racers then start their transactions together (on SQLite an open transaction
    holds the write lock, so loading inside it would serialise the racers early).
    """
    session = Session(engine, expire_on_commit=False)
    account, purpose = load(session, email, brand, key)
    session.commit()
    return session, account, purpose


@dataclass(frozen=True)
class Tally:
    recorded: int
    outcomes: Counter


def test_concurrent_writers_keep_one_gapless_verifiable_chain(
    ledger_engine: Engine, notary: Notary
):
    engine = ledger_engine
    start = threading.Barrier(WRITERS)
    tallies: list[Tally] = [Tally(0, Counter())] * WRITERS

    def writer(index: int) -> int:
        rng = random.Random(1000 + index)
        recorded = 0
        outcomes: Counter = Counter()
        start.wait(timeout=60)
        for _ in range(CHANGES_PER_WRITER):
            with Session(engine) as session:
                email = rng.choice(emails())
                brand, key = rng.choice(PURPOSES)
                account, purpose = load(session, email, brand, key)
                roll = rng.random()
                signal = rng.random() < 0.2
                change = Change(CollectionMethod.PORTAL, "en", utcnow(), gpc_signal=signal)
                if roll < 0.5:
                    result = service.grant(
                        session, notary, account, purpose, shown_version=1, change=change
                    )
                    outcomes[result.outcome] += 1
                    recorded += result.outcome is Outcome.RECORDED
                elif roll < 0.9:
                    result = service.withdraw(session, notary, account, purpose, change=change)
                    outcomes[result.outcome] += 1
                    recorded += result.outcome is Outcome.RECORDED
                else:
                    gpc = Change(CollectionMethod.GPC_SIGNAL, "en", utcnow(), gpc_signal=True)
                    withdrawn = service.honour_gpc(session, notary, account, change=gpc)
                    outcomes["gpc"] += len(withdrawn)
                    recorded += len(withdrawn)
                session.commit()
        tallies[index] = Tally(recorded, outcomes)
        return recorded

    recorded = sum(in_parallel(WRITERS, writer))
    outcomes = sum((t.outcomes for t in tallies), Counter())
    assert outcomes[Outcome.RECORDED] > WRITERS  # the run did give and withdraw for real
    assert outcomes[Outcome.UNCHANGED] > 0  # and writers did collide on the same consent

    with engine.connect() as connection:
        result = ledger.verify(connection, batch=50)
        assert result.ok, result
        assert result.checked == recorded

    with Session(engine) as session:
        seqs = list(session.scalars(select(ConsentEvent.seq).order_by(ConsentEvent.seq)))
        assert seqs == list(range(1, recorded + 1))
        head = session.get(LedgerHead, 1)
        assert head is not None
        assert head.seq == recorded
        assert session.scalar(select(func.count()).select_from(ConsentReceipt)) == recorded
        receipt_seqs = set(session.scalars(select(ConsentReceipt.event_seq)))
        assert receipt_seqs == set(seqs)

        # The materialised state says what the last event of each consent says.
        last: dict[tuple[str, str, str], ConsentEvent] = {}
        for event in session.scalars(select(ConsentEvent).order_by(ConsentEvent.seq)):
            last[(event.subject_key, event.brand_slug, event.purpose_key)] = event
        states = session.execute(
            select(ConsentState, Account.subject_key, Brand.slug, Purpose.key)
            .join(Account, Account.id == ConsentState.account_id)
            .join(Purpose, Purpose.id == ConsentState.purpose_id)
            .join(Brand, Brand.id == Purpose.brand_id)
        ).all()
        assert len(states) == len(last)
        for state, subject, brand, key in states:
            event = last[(subject, brand, key)]
            assert state.status == event.action, (subject, brand, key)
            assert state.last_event_seq == event.seq
            assert state.method == ledger.document_of(event)["method"]


@pytest.mark.parametrize("racers", [2, WRITERS])
def test_racing_the_same_change_records_it_once(ledger_engine: Engine, notary: Notary, racers: int):
    engine = ledger_engine
    # (what every racer asks, how many events that round must record)
    rounds = [("grant", 1), ("grant", 0), ("withdraw", 1), ("withdraw", 0), ("grant", 1)]
    for round_number, (choice, expected) in enumerate(rounds):
        start = threading.Barrier(racers)

        def racer(_index: int, choice: str = choice, start: threading.Barrier = start) -> int:
            session, account, purpose = loaded(
                engine, "writer0@example.com", "maison-berlingot", "partner-sharing"
            )
            with session:
                change = Change(CollectionMethod.PORTAL, "en", utcnow())
                start.wait(timeout=60)
                if choice == "grant":
                    result = service.grant(
                        session, notary, account, purpose, shown_version=1, change=change
                    )
                else:
                    result = service.withdraw(session, notary, account, purpose, change=change)
                session.commit()
                return int(result.outcome is Outcome.RECORDED)

        assert sum(in_parallel(racers, racer)) == expected, (round_number, choice)

    with Session(engine) as session:
        actions = list(session.scalars(select(ConsentEvent.action).order_by(ConsentEvent.seq)))
    assert actions == ["granted", "withdrawn", "granted"]
    with engine.connect() as connection:
        assert ledger.verify(connection).ok


def test_racing_first_consents_to_one_brand_share_one_pairwise_id(
    ledger_engine: Engine, notary: Notary
):
    engine = ledger_engine
    """Different purposes of the same brand at once: one relationship, one pairwise id."""
    keys = ["sms-offers", "partner-sharing", "analytics", "personalised-offers"]
    start = threading.Barrier(len(keys))

    def racer(index: int) -> int:
        session, account, purpose = loaded(
            engine, "writer1@example.com", "maison-berlingot", keys[index]
        )
        with session:
            start.wait(timeout=60)
            result = service.grant(
                session,
                notary,
                account,
                purpose,
                shown_version=1,
                change=Change(CollectionMethod.PORTAL, "en", utcnow()),
            )
            session.commit()
            return int(result.outcome is Outcome.RECORDED)

    assert sum(in_parallel(len(keys), racer)) == len(keys)
    with Session(engine) as session:
        receipts = list(session.scalars(select(ConsentReceipt.jws)))
    principals = {_principal(jws) for jws in receipts}
    assert len(receipts) == len(keys)
    assert len(principals) == 1


def _principal(token: str) -> str:
    import base64
    import json

    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    principal: str = payload["piiPrincipalId"]
    return principal
