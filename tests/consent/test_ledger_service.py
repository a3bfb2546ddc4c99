"""The consent service and the ledger it writes: state, chain, receipts, renewals."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from vrm_portal.consent import ledger, service
from vrm_portal.consent.models import ConsentEvent

pytestmark = pytest.mark.usefixtures("catalogue")


def test_grant_then_withdraw_appends_two_chained_events(
    db_session, make_account, notary, change, connection
):
    alice = make_account()
    purpose = service.find_purpose(db_session, "maison-berlingot", "personalised-offers")
    granted = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    withdrawn = service.withdraw(db_session, notary, alice, purpose, change=change())
    db_session.commit()
    assert granted.outcome is service.Outcome.RECORDED
    assert withdrawn.outcome is service.Outcome.RECORDED
    events = db_session.scalars(select(ConsentEvent).order_by(ConsentEvent.seq)).all()
    assert [e.action for e in events[-2:]] == ["granted", "withdrawn"]
    first, second = (ledger.document_of(e) for e in events[-2:])
    assert second["prev_hash"] == events[-2].hash.hex()
    assert first["subject"] == alice.subject_key
    assert "alice" not in events[-1].body
    assert ledger.verify(connection).ok
