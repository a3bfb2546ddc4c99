"""Declarative base, engine set-up and the per-request session.

Services take a ``Session`` and only ``flush()``; the request boundary commits once
(``after_request``) or rolls back (on error or at teardown). Work that must only happen
once the data is safely stored (sending an email) is registered with ``after_commit``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, g
from sqlalchemy import DateTime, Engine, MetaData, String, create_engine, event, make_url
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware, on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC datetime is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class utc_iso(FunctionElement[str]):
    """A timestamp column rendered by the database as RFC 3339 UTC text, e.g.
    ``2026-11-29T10:00:00.000000Z``: bulk reads skip building and formatting datetimes."""

    type = String()
    inherit_cache = True


@compiles(utc_iso, "sqlite")
def _utc_iso_sqlite(element: utc_iso, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores SQLite timestamps as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC).
    return f"(replace({compiler.process(element.clauses, **kw)}, ' ', 'T') || 'Z')"


@compiles(utc_iso, "postgresql")
def _utc_iso_postgresql(element: utc_iso, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


#: Seconds a new PostgreSQL connection may take before the attempt fails.
CONNECT_TIMEOUT_SECONDS = 5

#: Execution options of a connection that only reads: ``conn.execution_options(**READ_ONLY)``.
READ_ONLY: dict[str, Any] = {"vrm_read_only": True}


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings the portal relies on for ``url``'s backend."""
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        _make_sqlite_transactional(engine)
        return engine
    # A connection is tested before use (``pool_pre_ping``): after the database restarts
    # or drops its connections, the pool replaces the dead ones and the next request
    # succeeds, with no restart of the portal. A database that does not answer at all
    # fails a connection attempt after CONNECT_TIMEOUT_SECONDS rather than the kernel's
    # minutes (the request then answers 503, errors.py).
    if "connect_timeout" not in make_url(url).query:
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _make_sqlite_transactional(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, issue BEGIN, so SAVEPOINTs and DDL rollback work.

    Transactions start with ``BEGIN IMMEDIATE`` (as Django 5.1 offers for SQLite): a
    request that reads and then writes cannot fail with "database is locked" when another
    writer committed in between; concurrent writers queue on ``busy_timeout`` instead.
    Readers are not blocked (WAL). A connection marked with ``READ_ONLY`` execution
    options (health checks, ledger verification) starts a plain deferred ``BEGIN`` and
    never waits for writers. SQLite is the embedded engine; PostgreSQL serves load.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 10000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get("vrm_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class _State:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessionmaker: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)


class Database:
    """The app's database handle: ``db.session`` is the session of the current request."""

    def init_app(self, app: Flask) -> None:
        engine = create_db_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        app.extensions["vrm_db"] = _State(engine)
        app.after_request(self._commit)
        app.teardown_appcontext(self._close)

    @staticmethod
    def _state() -> _State:
        state: _State = current_app.extensions["vrm_db"]
        return state

    @property
    def engine(self) -> Engine:
        return self._state().engine

    @property
    def sessionmaker(self) -> sessionmaker[Session]:
        """New sessions on the app's database (background work opens its own)."""
        return self._state().sessionmaker

    @property
    def session(self) -> Session:
        if "vrm_db_session" not in g:
            g.vrm_db_session = self._state().sessionmaker()
        session: Session = g.vrm_db_session
        return session

    def bind_to_connection(self, app: Flask, connection: Connection) -> None:
        """Run every session of ``app`` inside ``connection``'s outer transaction (tests)."""
        app.extensions["vrm_db"].sessionmaker = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this request's data is committed; dropped on rollback."""
        g.setdefault("vrm_after_commit", []).append(callback)

    def commit(self) -> None:
        """Commit the request's session now and run the after-commit callbacks."""
        if "vrm_db_session" in g:
            g.vrm_db_session.commit()
        callbacks: list[Callable[[], None]] = g.pop("vrm_after_commit", [])
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        g.pop("vrm_after_commit", None)
        if "vrm_db_session" in g:
            g.vrm_db_session.rollback()

    def _commit(self, response: Response) -> Response:
        if response.status_code >= 500:
            self.rollback()
        else:
            self.commit()
        return response

    def _close(self, exc: BaseException | None) -> None:
        session: Session | None = g.pop("vrm_db_session", None)
        g.pop("vrm_after_commit", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()
