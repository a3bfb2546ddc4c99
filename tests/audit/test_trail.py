"""The staff audit trail: recorded with the caller's transaction, secrets never kept,
append-only in the database, searchable newest first, exported as CSV safely."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import Connection, delete, update
from sqlalchemy.exc import DBAPIError

from vrm_portal.accounts.models import StaffRole
from vrm_portal.audit import service
from vrm_portal.audit.models import StaffAction
from vrm_portal.clock import utcnow


@pytest.fixture
def admin(make_account):
    return make_account("root@example.com", role=StaffRole.ADMIN)


def test_an_action_keeps_who_what_and_values_but_never_secrets(db_session, admin):
    service.record(
        db_session,
        actor=admin,
        action="api_client.rotated",
        object_type="api_client",
        object_id=42,
        before={"name": "CRM", "client_secret_hash": "abc", "scopes": ["consumers:read"]},
        after={"name": "CRM", "secret": "s3cr3t", "nested": {"password": "p", "ok": 1}},
    )
    db_session.commit()
    row = db_session.query(StaffAction).one()
    assert (row.actor_email, row.actor_role, row.action) == (
        "root@example.com",
        "admin",
        "api_client.rotated",
    )
    assert row.object_id == "42"
    assert row.before == {
        "name": "CRM",
        "client_secret_hash": "[redacted]",
        "scopes": ["consumers:read"],
    }
    assert row.after == {
        "name": "CRM",
        "secret": "[redacted]",
        "nested": {"password": "[redacted]", "ok": 1},
    }


def test_a_rolled_back_action_leaves_no_row(db_session, admin):
    service.record(db_session, actor=admin, action="brand.created", object_type="brand")
    db_session.rollback()
    assert db_session.query(StaffAction).count() == 0


def test_the_table_refuses_update_and_delete(db_session, connection: Connection, admin):
    service.record(db_session, actor=admin, action="brand.created", object_type="brand")
    db_session.commit()
    with pytest.raises(DBAPIError, match="append-only"), connection.begin_nested():
        connection.execute(update(StaffAction).values(action="brand.deleted"))
    with pytest.raises(DBAPIError, match="append-only"), connection.begin_nested():
        connection.execute(delete(StaffAction))


def test_search_filters_and_pages_newest_first(db_session, admin, make_account):
    dpo = make_account("dpo@example.com", role=StaffRole.DPO)
    for number in range(5):
        service.record(
            db_session, actor=admin, action="topic.added", object_type="topic", object_id=number
        )
    service.record(db_session, actor=dpo, action="text_version.approved", object_type="version")
    db_session.commit()

    first = service.search(db_session, service.Filters(actor_email="ROOT@example.com"), limit=3)
    assert [r.object_id for r in first.rows] == ["4", "3", "2"]
    assert first.next_before is not None
    second = service.search(
        db_session, service.Filters(actor_email="root@example.com"), before_id=first.next_before
    )
    assert [r.object_id for r in second.rows] == ["1", "0"]
    assert second.next_before is None

    approved = service.search(db_session, service.Filters(action="text_version.approved"))
    assert [r.actor_email for r in approved.rows] == ["dpo@example.com"]
    later = service.search(db_session, service.Filters(since=utcnow() + timedelta(minutes=1)))
    assert later.rows == []


def test_csv_export_neutralises_formulas(db_session, admin):
    service.record(
        db_session,
        actor=admin,
        action="brand.renamed",
        object_type="brand",
        object_id="=HYPERLINK(1)",
        reason="+ticket",
        after={"name": "Aurore"},
    )
    db_session.commit()
    text = "".join(service.export_csv(db_session, service.Filters()))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(service.CSV_COLUMNS)
    assert rows[1][6].startswith("'=")
    assert rows[1][7].startswith("'+")
    assert rows[1][9] == '{"name": "Aurore"}'
