"""Renewal notices: publishing a new text version of a purpose tells its brand, through the
change feed (and the webhook outbox), whose consents stopped counting; a background job
writes them in batches, resumes after a crash without repeating or missing a consumer,
and stays ordered against consent changes that race it."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.api.test_openapi import assert_documented
from tests.conftest import scratch_database
from tests.consent.conftest import new_text
from vrm_portal import schema
from vrm_portal.accounts.models import Account
from vrm_portal.brands import feed
from vrm_portal.brands.models import Brand, BrandChange, BrandRelationship, ChangeKind
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, service
from vrm_portal.consent.catalogue import publish_version
from vrm_portal.consent.models import (
    CollectionMethod,
    ConsentState,
    ConsentStatus,
    LedgerHead,
)
from vrm_portal.consent.renewal import JOB_KIND
from vrm_portal.consent.service import Change, Notary
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.jobs import service as jobs
from vrm_portal.jobs.models import Job, JobStatus
from vrm_portal.jobs.service import PENDING_KEY
from vrm_portal.webhooks import service as webhooks
from vrm_portal.webhooks.models import WebhookDelivery, WebhookEndpoint

AURORE = "aurore-automobiles"
BERLINGOT = "maison-berlingot"
NEEDS_RENEWAL = ChangeKind.CONSENT_NEEDS_RENEWAL.value

pytestmark = pytest.mark.usefixtures("catalogue")


def renewal_jobs(session: Session) -> list[Job]:
    return list(
        session.scalars(
            select(Job)
            .where(Job.kind == JOB_KIND)
            .order_by(Job.created_at, Job.id)
            .execution_options(populate_existing=True)
        )
    )


def notices(session: Session, slug: str) -> list[BrandChange]:
    """``slug``'s ``consent.needs_renewal`` entries, in feed order."""
    brand = brand_by_slug(session, slug)
    assert brand is not None
    return list(
        session.scalars(
            select(BrandChange)
            .where(BrandChange.brand_id == brand.id, BrandChange.kind == NEEDS_RENEWAL)
            .order_by(BrandChange.seq)
        )
    )


def feed_seqs(session: Session, slug: str) -> list[int]:
    brand = brand_by_slug(session, slug)
    assert brand is not None
    return list(
        session.scalars(
            select(BrandChange.seq)
            .where(BrandChange.brand_id == brand.id)
            .order_by(BrandChange.seq)
        )
    )


def run(app, job: Job) -> jobs.Outcome:
    """Run ``job`` now, the way a worker does (its own session, its own commits)."""
    return app.extensions["vrm_jobs"].run_now(job.id)


def publish(db_session: Session, slug: str, key: str, marker: str = "v2") -> Any:
    """Publish a new text of ``slug``/``key`` and commit. Outside an app context the job is
    only recorded (a worker would pick it up); the tests run it when they choose."""
    purpose = service.find_purpose(db_session, slug, key)
    version = publish_version(db_session, purpose, new_text(marker))
    assert version is not None
    db_session.commit()
    return version


def test_a_new_version_tells_the_brand_whose_consents_need_renewal(
    app, client, db_session, make_account, consents, pairwise, brand_api
):
    alice, bob, carol, dave, erin, frank = (
        make_account(f"{name}@example.com")
        for name in ("alice", "bob", "carol", "dave", "erin", "frank")
    )
    for account in (alice, bob, carol, erin, frank):
        consents(account, AURORE, grant=("email-offers",))
    consents(alice, AURORE, grant=("sms-offers",))
    consents(alice, BERLINGOT, grant=("email-offers",))
    consents(bob, AURORE, withdraw=("email-offers",))
    consents(dave, AURORE, grant=("sms-offers",))
    # A state whose relationship is gone (the services never leave one): nobody to tell.
    db_session.execute(
        delete(BrandRelationship).where(
            BrandRelationship.account_id == frank.id,
            BrandRelationship.brand_id == brand_by_slug(db_session, AURORE).id,
        )
    )
    aurore = brand_by_slug(db_session, AURORE)
    webhooks.register_endpoint(
        db_session,
        aurore,
        "https://hooks.aurore.example/vrm",
        allow_loopback_http=False,
        now=utcnow(),
    )
    db_session.commit()

    version = publish(db_session, AURORE, "email-offers")
    (job,) = renewal_jobs(db_session)
    assert job.status == JobStatus.QUEUED
    purpose = service.find_purpose(db_session, AURORE, "email-offers")
    assert job.payload == {"purpose_id": purpose.id, "version": 2}
    assert notices(db_session, AURORE) == []
    # Erin renews before the job reaches her: her consent counts again, no notice is due.
    consents(erin, AURORE, grant=("email-offers",))

    assert run(app, job).status == "done"

    written = notices(db_session, AURORE)
    assert sorted(n.pairwise_id for n in written) == sorted(
        [pairwise(alice, AURORE), pairwise(carol, AURORE)]
    )
    for notice in written:
        assert notice.data == {"purpose": "email-offers", "version": 1, "current_version": 2}
        assert notice.occurred_at == version.published_at
    assert notices(db_session, BERLINGOT) == []
    (job,) = renewal_jobs(db_session)
    assert job.status == JobStatus.DONE
    assert job.result == {"notified": 2, "total": 2}
    assert (job.progress_done, job.progress_total) == (2, 2)
    assert job.payload is None
    # Each entry joined the webhook outbox, like every feed entry.
    queued = db_session.scalars(
        select(WebhookDelivery.change_seq).where(WebhookDelivery.brand_id == aurore.id)
    ).all()
    assert {n.seq for n in written} <= set(queued)
    assert feed_seqs(db_session, AURORE) == list(range(1, len(feed_seqs(db_session, AURORE)) + 1))

    # The brand reads them from /api/v1/changes, as documented.
    api = brand_api(AURORE)
    page = api.get("/api/v1/changes?after=0&limit=100")
    assert page.status_code == 200
    served = [item for item in page.json["items"] if item["type"] == NEEDS_RENEWAL]
    assert [item["consumer_id"] for item in served] == [n.pairwise_id for n in written]
    assert served[0]["data"] == {"purpose": "email-offers", "version": 1, "current_version": 2}
    document = client.get("/api/v1/openapi.json").json
    assert NEEDS_RENEWAL in document["components"]["schemas"]["ChangeKind"]["enum"]
    assert_documented(document, "/api/v1/changes", "get", page)
    # Renewing later is a plain consent.granted, after the notice.
    consents(alice, AURORE, grant=("email-offers",))
    last = api.get(f"/api/v1/changes?after={served[-1]['seq']}").json["items"]
    assert [(i["type"], i["data"]["version"]) for i in last] == [("consent.granted", 2)]


def test_the_command_says_how_many_notices_it_queued_and_the_job_runs(
    app, connection, db_session, make_account, consents, pairwise, tmp_path
):
    alice, bob = make_account("alice@example.com"), make_account("bob@example.com")
    consents(alice, AURORE, grant=("analytics",))
    consents(bob, AURORE, grant=("analytics", "sms-offers"))
    text = tmp_path / "analytics-v2.json"
    text.write_text(new_text().model_dump_json(), encoding="utf-8")

    result = app.test_cli_runner().invoke(
        args=[
            "vrm",
            "publish-purpose-version",
            "--brand",
            AURORE,
            "--purpose",
            "analytics",
            "--text-file",
            str(text),
        ]
    )

    assert result.exit_code == 0, (result.output, result.exception)
    assert "version 2 published" in result.output
    assert "renewal notices queued for 2 consumer(s)" in result.output
    # The test engine runs the job right after the command's commit.
    (job,) = renewal_jobs(db_session)
    assert job.status == JobStatus.DONE
    assert sorted(n.pairwise_id for n in notices(db_session, AURORE)) == sorted(
        [pairwise(alice, AURORE), pairwise(bob, AURORE)]
    )


def test_a_crashed_run_resumes_after_its_last_batch(
    app, db_session, make_account, consents, pairwise, monkeypatch
):
    people = [make_account(f"consumer{n}@example.com") for n in range(5)]
    for account in people:
        consents(account, AURORE, grant=("analytics",))
    publish(db_session, AURORE, "analytics")
    (job,) = renewal_jobs(db_session)
    job.payload = {**job.payload, "batch": 2}
    db_session.commit()

    real_append = feed.append_changes
    calls = 0

    def crashing_append(*args: Any, **kwargs: Any) -> range:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second batch
            raise ConnectionError("worker lost its database connection")
        return real_append(*args, **kwargs)

    monkeypatch.setattr(feed, "append_changes", crashing_append)
    assert run(app, job).status == "retry"
    monkeypatch.undo()

    # The first batch stayed, with its cursor and progress; the second was rolled back.
    first = [n.pairwise_id for n in notices(db_session, AURORE)]
    assert first == [pairwise(p, AURORE) for p in people[:2]]
    (job,) = renewal_jobs(db_session)
    assert job.status == JobStatus.QUEUED
    assert "ConnectionError" in (job.last_error or "")
    assert job.payload is not None
    assert (job.payload["done"], job.payload["total"]) == (2, 5)
    assert (job.progress_done, job.progress_total) == (2, 5)

    # Meanwhile one consumer still to be told renews; one already told withdraws.
    consents(people[4], AURORE, grant=("analytics",))
    consents(people[0], AURORE, withdraw=("analytics",))
    job.next_attempt_at = utcnow()
    db_session.commit()
    assert run(app, job).status == "done"

    told = [n.pairwise_id for n in notices(db_session, AURORE)]
    assert told == [pairwise(p, AURORE) for p in people[:4]]  # each once, none missing
    (job,) = renewal_jobs(db_session)
    assert job.result == {"notified": 4, "total": 5}
    assert job.attempts == 2
    seqs = feed_seqs(db_session, AURORE)
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_run_that_lost_the_job_to_another_worker_stops_before_writing(
    app, db_session, make_account, consents, pairwise, monkeypatch
):
    people = [make_account(f"consumer{n}@example.com") for n in range(5)]
    for account in people:
        consents(account, AURORE, grant=("analytics",))
    publish(db_session, AURORE, "analytics")
    (job,) = renewal_jobs(db_session)
    job.payload = {**job.payload, "batch": 2}
    db_session.commit()

    real_lock_head = ledger.lock_head
    batches = 0

    def lock_head_after_a_takeover(session: Session) -> ledger.Head:
        nonlocal batches
        batches += 1
        if batches == 2:
            # Our lease ran out during the first batch: another worker claimed the job.
            session.execute(update(Job).where(Job.id == job.id).values(attempts=Job.attempts + 1))
            session.commit()
        return real_lock_head(session)

    monkeypatch.setattr(ledger, "lock_head", lock_head_after_a_takeover)
    run(app, job)
    monkeypatch.undo()
    assert len(notices(db_session, AURORE)) == 2  # the first batch only

    # The worker that took over resumes after the committed batch.
    db_session.execute(
        update(Job).where(Job.id == job.id).values(lease_until=utcnow(), next_attempt_at=utcnow())
    )
    db_session.commit()
    assert run(app, job).status == "done"
    assert [n.pairwise_id for n in notices(db_session, AURORE)] == [
        pairwise(p, AURORE) for p in people
    ]


def test_a_rolled_back_publish_enqueues_nothing(app, db_session, make_account, consents):
    alice = make_account("alice@example.com")
    consents(alice, AURORE, grant=("analytics",))
    purpose = service.find_purpose(db_session, AURORE, "analytics")
    with app.app_context():
        assert publish_version(db_session, purpose, new_text()) is not None
        assert db_session.info.get(PENDING_KEY)
        db_session.rollback()
        assert PENDING_KEY not in db_session.info
    assert renewal_jobs(db_session) == []
    assert service.find_purpose(db_session, AURORE, "analytics").current_version == 1
    assert notices(db_session, AURORE) == []


def test_the_first_version_of_a_purpose_needs_no_job(db_session):
    assert renewal_jobs(db_session) == []  # the demo catalogue published only version 1s


def test_a_newer_version_supersedes_a_job_not_yet_done_and_each_entry_names_its_versions(
    app, db_session, make_account, consents, pairwise
):
    alice, bob = make_account("alice@example.com"), make_account("bob@example.com")
    consents(alice, AURORE, grant=("analytics",))
    consents(bob, AURORE, grant=("analytics",))
    publish(db_session, AURORE, "analytics", "v2")
    consents(bob, AURORE, grant=("analytics",))  # bob renews to version 2
    publish(db_session, AURORE, "analytics", "v3")
    older, newer = renewal_jobs(db_session)
    assert (older.payload["version"], newer.payload["version"]) == (2, 3)

    # The version 2 job finds version 3 published: that job covers everyone, from the start.
    assert run(app, older).status == "done"
    (older, _newer) = renewal_jobs(db_session)
    assert older.result == {"notified": 0, "total": 1, "superseded_by": 3}
    assert notices(db_session, AURORE) == []

    assert run(app, newer).status == "done"
    told = {n.pairwise_id: n.data for n in notices(db_session, AURORE)}
    assert told == {
        pairwise(alice, AURORE): {"purpose": "analytics", "version": 1, "current_version": 3},
        pairwise(bob, AURORE): {"purpose": "analytics", "version": 2, "current_version": 3},
    }


def test_a_job_run_twice_after_it_finished_writes_nothing_more(
    app, db_session, make_account, consents
):
    alice = make_account("alice@example.com")
    consents(alice, AURORE, grant=("analytics",))
    publish(db_session, AURORE, "analytics")
    (job,) = renewal_jobs(db_session)
    assert run(app, job).status == "done"
    assert run(app, job).status == "skipped"
    assert len(notices(db_session, AURORE)) == 1


def test_appending_a_batch_is_what_as_many_single_appends_do(db_session):
    brand = brand_by_slug(db_session, BERLINGOT)
    other = brand_by_slug(db_session, AURORE)
    now = utcnow()

    def endpoint(owner: Brand, url: str) -> int:
        created, _secret = webhooks.register_endpoint(
            db_session, owner, url, allow_loopback_http=False, now=now
        )
        return created.id

    active = endpoint(brand, "https://hooks.berlingot.example/a")
    disabled = endpoint(brand, "https://hooks.berlingot.example/b")
    endpoint(other, "https://hooks.aurore.example/c")
    db_session.get_one(WebhookEndpoint, disabled).disabled_at = now
    db_session.flush()
    base = brand.feed_seq
    granted = ChangeKind.CONSENT_GRANTED
    renewal = ChangeKind.CONSENT_NEEDS_RENEWAL

    first = feed.append_change(db_session, brand.id, granted, "p-0", now, {"n": 0})
    batch = feed.append_changes(
        db_session, brand.id, renewal, now, [("p-1", {"n": 1}), ("p-2", {})]
    )
    last = feed.append_change(db_session, brand.id, granted, "p-3", now, {"n": 3})
    assert feed.append_changes(db_session, brand.id, renewal, now, []) == range(0)
    db_session.commit()

    assert (first, list(batch), last) == (base + 1, [base + 2, base + 3], base + 4)
    rows = db_session.execute(
        select(BrandChange.seq, BrandChange.kind, BrandChange.pairwise_id, BrandChange.data)
        .where(BrandChange.brand_id == brand.id)
        .order_by(BrandChange.seq)
    ).all()
    assert [tuple(row) for row in rows] == [
        (base + 1, granted.value, "p-0", {"n": 0}),
        (base + 2, renewal.value, "p-1", {"n": 1}),
        (base + 3, renewal.value, "p-2", {}),
        (base + 4, granted.value, "p-3", {"n": 3}),
    ]
    assert db_session.scalar(select(Brand.feed_seq).where(Brand.id == brand.id)) == base + 4
    deliveries = db_session.execute(
        select(WebhookDelivery.endpoint_id, WebhookDelivery.change_seq, WebhookDelivery.status)
        .where(WebhookDelivery.brand_id == brand.id)
        .order_by(WebhookDelivery.id)
    ).all()
    assert [tuple(row) for row in deliveries] == [
        (active, base + n, "pending") for n in range(1, 5)
    ]
    assert (
        db_session.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.brand_id == other.id)
        ).all()
        == []
    )


# ---- racing consent changes (own connections, on a scratch database) --------------------

RACERS = 4
CONSUMERS = 60


@pytest.fixture
def race_engine(database_url, tmp_path) -> Iterator[Engine]:
    with scratch_database(database_url, tmp_path, "renewal") as url:
        engine = create_db_engine(url, pool_size=RACERS + 2, max_overflow=RACERS)
        try:
            schema.upgrade(engine)
            with Session(engine) as session:
                load_demo_catalogue(session)
                for n in range(CONSUMERS):
                    session.add(Account(email=f"racer{n}@example.com"))
                session.commit()
            yield engine
        finally:
            engine.dispose()


@dataclass(frozen=True)
class Published:
    job_id: str
    account_ids: list[int]
    purpose_id: int
    brand_id: int


def grant_all_then_publish(engine: Engine, notary: Notary) -> Published:
    """Every account grants ``analytics`` (version 1), committed; then version 2 is
    published. No app here: the job is only recorded, with batches of 2."""
    with Session(engine) as session:
        purpose = service.find_purpose(session, AURORE, "analytics")
        accounts = list(session.scalars(select(Account).order_by(Account.id)))
        for account in accounts:
            change = Change(CollectionMethod.IMPORT, "en", utcnow())
            service.grant(session, notary, account, purpose, shown_version=1, change=change)
        session.commit()
        publish_version(session, purpose, new_text())
        session.commit()
        (job,) = renewal_jobs(session)
        job.payload = {**job.payload, "batch": 2}
        session.commit()
        return Published(job.id, [a.id for a in accounts], purpose.id, purpose.brand_id)


def run_on(engine: Engine, job_id: str) -> jobs.Outcome:
    """Run the job as a worker would, with its own sessions on ``engine``."""
    return jobs.run_job(lambda: Session(engine), job_id, lambda _message: None)


def test_the_job_writes_its_entries_while_holding_the_ledger_head(
    race_engine: Engine, notary: Notary, monkeypatch
):
    """What keeps a renewal from overtaking its notice, checked directly: while the job
    writes a batch, no consent change can start (it would wait on the ledger head)."""
    if race_engine.dialect.name != "postgresql":
        pytest.skip("on SQLite every write transaction excludes the others (BEGIN IMMEDIATE)")
    published = grant_all_then_publish(race_engine, notary)
    probes: list[str] = []
    real_append = feed.append_changes

    def probing_append(*args: Any, **kwargs: Any) -> range:
        with race_engine.connect() as other:
            try:
                other.execute(select(LedgerHead.id).with_for_update(nowait=True)).all()
                probes.append("free")
            except OperationalError:
                probes.append("held")
            other.rollback()
        return real_append(*args, **kwargs)

    monkeypatch.setattr(feed, "append_changes", probing_append)
    assert run_on(race_engine, published.job_id).status == "done"
    assert len(probes) > CONSUMERS // 2  # every batch (and the last, empty one)
    assert set(probes) == {"held"}


def test_consent_changes_racing_the_job_never_precede_their_notice(
    race_engine: Engine, notary: Notary
):
    """Consumers renew or withdraw while the job writes its batches (threads, own
    connections). On PostgreSQL they really run in parallel and queue on the ledger
    head; on SQLite they serialise through ``BEGIN IMMEDIATE``. Either way, per consumer:
    at most one notice, before any renewal; one for every consent still outdated."""
    engine = race_engine
    published = grant_all_then_publish(engine, notary)
    job_id, account_ids = published.job_id, published.account_ids
    brand_id, purpose_id = published.brand_id, published.purpose_id
    start = threading.Barrier(RACERS + 1)

    def racer(index: int) -> None:
        rng = random.Random(index)
        mine = account_ids[index::RACERS]
        start.wait(timeout=60)
        for account_id in rng.sample(mine, len(mine) // 2):
            with Session(engine) as session:
                account = session.get_one(Account, account_id)
                current = service.find_purpose(session, AURORE, "analytics")
                change = Change(CollectionMethod.IMPORT, "en", utcnow())
                if rng.random() < 0.6:
                    service.grant(session, notary, account, current, shown_version=2, change=change)
                else:
                    service.withdraw(session, notary, account, current, change=change)
                session.commit()

    def worker() -> jobs.Outcome:
        start.wait(timeout=60)
        return run_on(engine, job_id)

    with ThreadPoolExecutor(max_workers=RACERS + 1) as pool:
        working = pool.submit(worker)
        racing = [pool.submit(racer, n) for n in range(RACERS)]
        for future in racing:
            future.result(timeout=300)
        assert working.result(timeout=300).status == "done"

    with Session(engine) as session:
        entries = session.execute(
            select(BrandChange.pairwise_id, BrandChange.kind, BrandChange.data)
            .where(BrandChange.brand_id == brand_id)
            .order_by(BrandChange.seq)
        ).all()
        by_account = dict(
            session.execute(
                select(BrandRelationship.account_id, BrandRelationship.pairwise_id).where(
                    BrandRelationship.brand_id == brand_id
                )
            ).all()
        )
        states = {
            state.account_id: state
            for state in session.scalars(
                select(ConsentState).where(ConsentState.purpose_id == purpose_id)
            )
        }
        seqs = list(
            session.scalars(select(BrandChange.seq).where(BrandChange.brand_id == brand_id))
        )
        feed_seq = session.scalar(select(Brand.feed_seq).where(Brand.id == brand_id))
    assert sorted(seqs) == list(range(1, len(seqs) + 1))
    assert feed_seq == len(seqs)
    for account_id in account_ids:
        history = [(kind, data) for pid, kind, data in entries if pid == by_account[account_id]]
        told = [i for i, (kind, _data) in enumerate(history) if kind == NEEDS_RENEWAL]
        assert len(told) <= 1, history
        after_publish = [
            i
            for i, (kind, data) in enumerate(history)
            if kind == ChangeKind.CONSENT_WITHDRAWN.value
            or (kind == ChangeKind.CONSENT_GRANTED.value and data["version"] == 2)
        ]
        if told and after_publish:
            assert told[0] < after_publish[0], history  # the notice came first
        state = states[account_id]
        if state.status == ConsentStatus.GRANTED.value and state.version == 1:
            assert told, history  # still outdated: it was told
        if not after_publish:
            assert told, history  # nobody changed anything: told exactly once
