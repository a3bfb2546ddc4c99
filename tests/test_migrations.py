"""Migrations build the schema from empty, agree with the models, and undo cleanly."""

from __future__ import annotations

from sqlalchemy import inspect

from vrm_portal import schema
from vrm_portal.all_models import Base
from vrm_portal.db import create_db_engine


def test_upgrade_from_empty_matches_the_models(scratch_database_url):
    engine = create_db_engine(scratch_database_url)
    try:
        schema.upgrade(engine)
        assert schema.current_revision(engine) == schema.head_revision()
        assert schema.drift(engine) == []
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_everything_and_upgrade_again_works(scratch_database_url):
    engine = create_db_engine(scratch_database_url)
    try:
        schema.upgrade(engine)
        schema.downgrade(engine, "base")
        remaining = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert remaining == set()
        assert schema.current_revision(engine) is None
        schema.upgrade(engine)
        assert schema.drift(engine) == []
    finally:
        engine.dispose()


def test_drift_is_reported_when_a_model_has_no_migration(scratch_database_url):
    engine = create_db_engine(scratch_database_url)
    try:
        schema.upgrade(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)")
        problems = schema.drift(engine)
        assert any("stray_table" in str(problem) for problem in problems)
    finally:
        engine.dispose()


def test_a_database_behind_head_counts_as_drift(scratch_database_url):
    engine = create_db_engine(scratch_database_url)
    try:
        assert any(p[0] == "revision" for p in schema.drift(engine) if isinstance(p, tuple))
    finally:
        engine.dispose()
