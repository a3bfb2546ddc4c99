"""The ledger is append-only and tamper-evident: the database refuses UPDATE and DELETE,
and ``ledger.verify`` names the first event that an edit, a deletion or a reordering broke.

To tamper, the tests switch the append-only triggers off inside their own transaction
(rolled back at the end), as an attacker with the database owner's rights could.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import Connection, text, update
from sqlalchemy.exc import DBAPIError

from tests.consent.conftest import events_of, purpose_of
from vrm_portal.consent import ledger, service
from vrm_portal.consent.models import ConsentEvent

pytestmark = pytest.mark.usefixtures("catalogue")

CHAIN_LENGTH = 6


@pytest.fixture
def chain(db_session, make_account, notary, change) -> list[ConsentEvent]:
    """Six committed events from two consumers, alternating grant and withdraw."""
    alice = make_account()
    bob = make_account("bob@example.com")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    analytics = purpose_of(db_session, "aurore-automobiles", "analytics")
    service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
    service.grant(db_session, notary, bob, analytics, shown_version=1, change=change())
    service.withdraw(db_session, notary, alice, sms, change=change())
    service.grant(db_session, notary, alice, analytics, shown_version=1, change=change())
    service.withdraw(db_session, notary, bob, analytics, change=change())
    service.grant(db_session, notary, bob, sms, shown_version=1, change=change())
    db_session.commit()
    events = events_of(db_session)
    assert [e.seq for e in events] == list(range(1, CHAIN_LENGTH + 1))
    return events


def triggers_off(connection: Connection) -> None:
    """Lift the append-only protection until the test's transaction is rolled back."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "ALTER TABLE consent_events DISABLE TRIGGER consent_events_append_only"
        )
    else:
        connection.exec_driver_sql("DROP TRIGGER consent_events_no_update")
        connection.exec_driver_sql("DROP TRIGGER consent_events_no_delete")


@pytest.fixture
def tamper(connection: Connection, chain) -> Connection:
    assert ledger.verify(connection).ok
    triggers_off(connection)
    return connection


def execute(connection: Connection, sql: str, **params) -> int:
    return connection.execute(text(sql), params).rowcount


def set_column(connection: Connection, seq: int, column: str, value: object) -> None:
    events = ConsentEvent.__table__
    connection.execute(update(events).where(events.c.seq == seq).values({column: value}))


def assert_first_bad(
    connection: Connection, seq: int, event_id: str | None, words: str, checked: int | None = None
) -> None:
    """``verify`` stops at event ``seq`` (``event_id``), having checked ``checked`` before it."""
    for batch in (10_000, 2):  # also across fetch batches (server-side cursor on PostgreSQL)
        result = ledger.verify(connection, batch=batch)
        assert not result.ok, result
        assert result.first_bad_seq == seq, result
        assert result.first_bad_event_id == event_id, result
        assert result.checked == (seq - 1 if checked is None else checked), result
        assert words in result.problem, result


# ---- the clean chain ------------------------------------------------------------------


def test_a_clean_chain_verifies(connection, chain):
    for batch in (10_000, 4, 1):
        result = ledger.verify(connection, batch=batch)
        assert result.ok, result
        assert result.checked == CHAIN_LENGTH
        assert result.first_bad_seq is None
        assert result.problem is None


def test_an_empty_ledger_verifies(connection):
    result = ledger.verify(connection)
    assert result.ok
    assert result.checked == 0


# ---- the database refuses edits -------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_events SET action = 'withdrawn' WHERE seq = 1",
        "UPDATE consent_events SET body = body || ' ' WHERE seq = 2",
        "DELETE FROM consent_events WHERE seq = 3",
        "DELETE FROM consent_events",
    ],
)
def test_the_database_refuses_to_change_or_delete_events(connection, chain, statement):
    with pytest.raises(DBAPIError, match="append-only"), connection.begin_nested():
        connection.exec_driver_sql(statement)
    assert ledger.verify(connection).ok
    assert ledger.verify(connection).checked == CHAIN_LENGTH


def test_postgresql_also_refuses_truncate_and_sqlite_keeps_its_triggers(connection, chain):
    if connection.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), connection.begin_nested():
            connection.exec_driver_sql("TRUNCATE consent_events")
        triggers = connection.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'consent_events'::regclass "
            "AND NOT tgisinternal AND tgenabled <> 'D'"
        ).scalars()
        assert set(triggers) == {"consent_events_append_only", "consent_events_no_truncate"}
    else:
        triggers = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'consent_events'"
        ).scalars()
        assert set(triggers) == {"consent_events_no_update", "consent_events_no_delete"}
    assert ledger.verify(connection).ok


# ---- tampering is detected ------------------------------------------------------------


def test_an_edited_body_is_detected_at_that_event(tamper, chain):
    target = chain[2]  # alice's withdrawal
    assert execute(
        tamper,
        "UPDATE consent_events SET body = replace(body, '\"withdrawn\"', '\"granted\"') "
        "WHERE seq = :seq",
        seq=target.seq,
    )
    assert_first_bad(tamper, target.seq, target.event_id, "hash does not match")


def test_an_edited_body_with_a_recomputed_hash_breaks_the_next_link(tamper, chain):
    target = chain[1]
    document = json.loads(target.body)
    document["action"] = "withdrawn"
    body = ledger.canonical_json(document)
    execute(
        tamper,
        "UPDATE consent_events SET body = :body, hash = :hash, action = 'withdrawn' "
        "WHERE seq = :seq",
        body=body,
        hash=hashlib.sha256(body.encode()).digest(),
        seq=target.seq,
    )
    following = chain[2]
    assert_first_bad(tamper, following.seq, following.event_id, "does not link")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "withdrawn"),
        ("subject_key", "0" * 64),
        ("brand_slug", "domaine-des-coteaux"),
        ("purpose_key", "sms-offers"),
        ("occurred_at", ledger.parse_timestamp("2001-02-03T04:05:06.000007Z")),
    ],
)
def test_an_edited_column_is_detected_at_that_event(tamper, chain, column, value):
    target = chain[3]  # alice grants aurore/analytics
    assert getattr(target, column) != value
    set_column(tamper, target.seq, column, value)
    assert_first_bad(tamper, target.seq, target.event_id, "columns disagree")


@pytest.mark.parametrize(
    ("column", "suffix"),
    [
        # 15 characters: fits the 16-character column on every engine.
        ("action", '","actor'),
        # Hides the event from anything that filters on the brand (history, brand feeds).
        ("brand_slug", '","event_id'),
        ("purpose_key", '","purpose_version'),
    ],
)
def test_a_column_edited_to_look_like_json_is_still_detected(tamper, chain, column, suffix):
    """The indexed columns must equal the hashed document's values exactly: a value that
    smuggles a quote (``granted","actor``) must not pass for ``granted``."""
    target = chain[0]
    crafted = getattr(target, column) + suffix
    set_column(tamper, target.seq, column, crafted)
    assert_first_bad(tamper, target.seq, target.event_id, "columns disagree")


def test_a_deleted_middle_event_is_detected_where_it_is_missing(tamper, chain):
    missing, following = chain[2], chain[3]
    assert execute(tamper, "DELETE FROM consent_events WHERE seq = :seq", seq=missing.seq) == 1
    assert_first_bad(
        tamper,
        following.seq,
        following.event_id,
        f"expected event #{missing.seq}",
        checked=missing.seq - 1,
    )


def test_a_deleted_first_event_is_detected(tamper, chain):
    execute(tamper, "DELETE FROM consent_events WHERE seq = 1")
    assert_first_bad(tamper, 2, chain[1].event_id, "expected event #1", checked=0)


def test_a_deleted_last_event_is_detected_by_the_head(tamper, chain):
    last = chain[-1]
    assert execute(tamper, "DELETE FROM consent_events WHERE seq = :seq", seq=last.seq) == 1
    for batch in (10_000, 2):
        result = ledger.verify(tamper, batch=batch)
        assert not result.ok
        assert result.first_bad_seq == last.seq
        assert result.checked == CHAIN_LENGTH - 1
        assert "removed from the end" in result.problem


def test_renumbered_events_are_detected(tamper, chain):
    """Renumbering the tail to hide a deleted event still breaks the chain."""
    execute(tamper, "DELETE FROM consent_events WHERE seq = 3")
    for seq in range(4, CHAIN_LENGTH + 1):
        execute(
            tamper, "UPDATE consent_events SET seq = :new WHERE seq = :old", new=seq - 1, old=seq
        )
    moved = chain[3]  # now numbered 3
    bad = ledger.verify(tamper)
    assert not bad.ok
    assert bad.first_bad_seq == 3
    assert bad.first_bad_event_id == moved.event_id


def test_swapped_events_are_detected_at_the_first_one_out_of_place(tamper, chain):
    second, third = chain[1], chain[2]
    execute(tamper, "UPDATE consent_events SET seq = -1 WHERE seq = 2")
    execute(tamper, "UPDATE consent_events SET seq = 2 WHERE seq = 3")
    execute(tamper, "UPDATE consent_events SET seq = 3 WHERE seq = -1")
    assert_first_bad(tamper, 2, third.event_id, "does not link")
    assert second.event_id != third.event_id


def test_swapped_bodies_are_detected(tamper, chain):
    """Exchanging two events' contents (hash with it) is detected at the first of them."""
    second, third = chain[1], chain[2]
    for target, source in ((second, third), (third, second)):
        execute(
            tamper,
            "UPDATE consent_events SET body = :body, hash = :hash, subject_key = :subject, "
            "brand_slug = :brand, purpose_key = :purpose, action = :action WHERE seq = :seq",
            body=source.body,
            hash=source.hash,
            subject=source.subject_key,
            brand=source.brand_slug,
            purpose=source.purpose_key,
            action=source.action,
            seq=target.seq,
        )
    result = ledger.verify(tamper)
    assert not result.ok
    assert result.first_bad_seq == 2
    assert result.first_bad_event_id == third.event_id
