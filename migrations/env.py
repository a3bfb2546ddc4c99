"""Alembic environment: runs against the engine handed over by ``vrm_portal.schema``,
or, from the ``alembic`` command line, against ``VRM_DATABASE_URL``."""

from __future__ import annotations

import os

from alembic import context

from config import Config
from vrm_portal.all_models import Base
from vrm_portal.db import create_db_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = create_db_engine(os.environ.get("VRM_DATABASE_URL") or Config.DATABASE_URL)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
            user_module_prefix="",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run against a database.")
run_migrations_online()
