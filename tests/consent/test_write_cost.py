"""What a consent save costs the database, counted statement by statement: a guard against
the write path growing again (CONTRIBUTING, "The write path").

The statements are counted on the test's connection with a ``before_cursor_execute``
listener, the SAVEPOINTs of the test harness left out. A statement run with many rows
(``executemany``) counts once: it is one round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, select

from tests.conftest import csrf_token
from tests.consent.conftest import events_of, purpose_of
from vrm_portal.brands.models import BrandChange
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod, ConsentReceipt

BRAND_PAGE = "/consents/aurore-automobiles"
PURPOSES = (
    "email-offers",
    "sms-offers",
    "personalised-offers",
    "partner-sharing",
    "analytics",
    "postal-offers",
)
#: A grant or a withdrawal through the form, from the session cookie to the receipt.
SAVE_STATEMENTS = 12
#: "Withdraw all" of a brand's six consents: one statement more than six withdrawals' one
#: round of feed and ledger writes, not six rounds.
WITHDRAW_ALL_STATEMENTS = 12


@contextmanager
def statements(bind: Engine | Connection) -> Iterator[list[str]]:
    """The SQL statements run on ``bind`` inside the block (test SAVEPOINTs left out)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "SAVEPOINT" not in statement:
            seen.append(" ".join(statement.split()))

    event.listen(bind, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", record)


def _post(client: Any, token: str, key: str, choice: str) -> None:
    response = client.post(
        f"/consents/aurore-automobiles/{key}",
        data={"csrf_token": token, "choice": choice, "version": 1},
    )
    assert response.status_code == 303, response.get_data(as_text=True)


def test_a_save_through_the_form_runs_a_bounded_number_of_statements(
    client, alice, connection, db_session
):
    token = csrf_token(client, BRAND_PAGE)
    _post(client, token, "analytics", "grant")  # the first change creates the relationship
    counts = {}
    for choice in ("withdraw", "grant", "withdraw"):
        with statements(connection) as seen:
            _post(client, token, "analytics", choice)
        counts[choice] = len(seen)
        assert len(seen) <= SAVE_STATEMENTS, "\n".join(seen)
        # One event, one receipt, one feed entry: nothing skipped to save statements.
        assert sum(s.startswith("INSERT INTO consent_events") for s in seen) == 1
        assert sum(s.startswith("INSERT INTO consent_receipts") for s in seen) == 1
        assert sum(s.startswith("INSERT INTO brand_changes") for s in seen) == 1
        # The brand, the purpose and its text: read once, together.
        assert sum(s.startswith("SELECT brands.") for s in seen) == 1
        assert not any(s.startswith("SELECT purpose_versions.") for s in seen)
    assert [e.action for e in events_of(db_session, alice)] == [
        "granted",
        "withdrawn",
        "granted",
        "withdrawn",
    ]


def test_withdraw_all_of_six_consents_costs_one_round_of_writes(
    client, alice, connection, db_session, notary, change
):
    token = csrf_token(client, BRAND_PAGE)
    for key in PURPOSES:
        purpose = purpose_of(db_session, "aurore-automobiles", key)
        # Imported, so the email purpose needs no confirmation link.
        service.grant(
            db_session,
            notary,
            alice,
            purpose,
            shown_version=purpose.current_version,
            change=change(CollectionMethod.IMPORT),
        )
    db_session.commit()
    before = len(events_of(db_session, alice))
    with statements(connection) as seen:
        response = client.post(
            "/consents/aurore-automobiles/all/withdraw", data={"csrf_token": token}
        )
    assert response.status_code == 303
    assert len(seen) <= WITHDRAW_ALL_STATEMENTS, "\n".join(seen)
    assert sum(s.startswith("INSERT INTO consent_events") for s in seen) == 1
    events = events_of(db_session, alice)[before:]
    assert [e.action for e in events] == ["withdrawn"] * 6
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + 6))
    receipts = db_session.scalars(
        select(ConsentReceipt.event_seq).where(ConsentReceipt.event_seq >= events[0].seq)
    ).all()
    assert sorted(receipts) == [e.seq for e in events]
    feed = db_session.scalars(
        select(BrandChange.data)
        .where(BrandChange.kind == "consent.withdrawn")
        .order_by(BrandChange.seq)
    ).all()
    assert [entry["purpose"] for entry in feed[-6:]] == [
        "email-offers",
        "sms-offers",
        "personalised-offers",
        "partner-sharing",
        "analytics",
        "postal-offers",
    ]
