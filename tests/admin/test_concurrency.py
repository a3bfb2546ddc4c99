"""Two reviewers approving one draft at once publish it once; two admins disabling each
other at once leave one admin active. Each racer is a thread with its own session on a
scratch database (really parallel on PostgreSQL, serialised on SQLite)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.conftest import scratch_database
from vrm_portal import schema
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.admin import drafts, staff
from vrm_portal.admin.errors import AdminError
from vrm_portal.admin.models import TextDraft
from vrm_portal.consent import service
from vrm_portal.consent.catalogue import PurposeText
from vrm_portal.consent.models import PurposeVersion
from vrm_portal.db import create_db_engine
from vrm_portal.demo.catalogue import load_demo_catalogue


@pytest.fixture
def race_engine(database_url, tmp_path) -> Iterator[Engine]:
    with scratch_database(database_url, tmp_path, "admin_race") as url:
        engine = create_db_engine(url, pool_size=6, max_overflow=4)
        try:
            schema.upgrade(engine)
            with Session(engine) as session:
                load_demo_catalogue(session)
                for email, role in (
                    ("author@example.com", StaffRole.ADMIN),
                    ("other-admin@example.com", StaffRole.ADMIN),
                    ("dpo1@example.com", StaffRole.DPO),
                    ("dpo2@example.com", StaffRole.DPO),
                ):
                    session.add(Account(email=email, staff_role=role.value))
                session.commit()
            yield engine
        finally:
            engine.dispose()


def _account(session: Session, email: str) -> Account:
    account = session.scalar(select(Account).where(Account.email == email))
    assert account is not None
    return account


def _race(count: int, work) -> list[str]:
    start = threading.Barrier(count)

    def run(index: int) -> str:
        start.wait(timeout=60)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return sorted(f.result(timeout=120) for f in [pool.submit(run, i) for i in range(count)])


def test_two_reviewers_at_once_publish_once(race_engine: Engine, app):
    engine = race_engine
    with Session(engine) as session:
        purpose = service.find_purpose(session, "maison-berlingot", "sms-offers")
        text = PurposeText(title_en="T", title_fr="T", text_en="New", text_fr="Nouveau")
        purpose_id = purpose.id
        draft_id = drafts.create_draft(
            session, _account(session, "author@example.com"), purpose, text
        ).id
        session.commit()

    def approve(index: int) -> str:
        with app.app_context(), Session(engine) as session:
            reviewer = _account(session, f"dpo{index + 1}@example.com")
            draft = session.get(TextDraft, draft_id)
            assert draft is not None
            try:
                drafts.approve(session, reviewer, draft, "ok")
            except AdminError as exc:
                session.rollback()
                return f"refused:{type(exc).__name__}"
            session.commit()
            return "published"

    assert _race(2, approve) == ["published", "refused:NothingToDo"]
    with Session(engine) as session:
        versions = session.scalars(
            select(PurposeVersion.version).where(PurposeVersion.purpose_id == purpose_id)
        ).all()
        assert sorted(versions) == [1, 2]


def test_two_admins_disabling_each_other_leave_one_active(race_engine: Engine, app):
    engine = race_engine
    emails = ["author@example.com", "other-admin@example.com"]

    def disable(index: int) -> str:
        with app.app_context(), Session(engine) as session:
            actor = _account(session, emails[index])
            target = _account(session, emails[1 - index])
            try:
                staff.disable(session, actor, target, reason="race")
            except AdminError as exc:
                session.rollback()
                return f"refused:{exc}"
            session.commit()
            return "disabled"

    assert _race(2, disable) == ["disabled", "refused:last-admin"]
    with Session(engine) as session:
        active = session.scalars(
            select(Account.email).where(
                Account.staff_role == "admin", Account.disabled_at.is_(None)
            )
        ).all()
        assert len(active) == 1
