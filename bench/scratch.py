"""A database of a benchmark run's own: a SQLite file in a temporary folder, or a new
PostgreSQL database on the given server, removed at the end either way."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Scratch:
    url: str
    #: What a report calls it: the SQLite file, or the PostgreSQL database name.
    label: str


@contextmanager
def scratch_database(url: str | None, prefix: str) -> Iterator[Scratch]:
    """A fresh database named after ``prefix`` (``vrm_bench_<prefix>_…``).

    ``url`` None or SQLite: a file in a temporary folder. PostgreSQL: ``url`` names the
    server (any database on it); the new database is dropped ``WITH (FORCE)`` at the end.
    """
    if url is None or make_url(url).get_backend_name() == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix=f"vrm_bench_{prefix}_"))
        path = directory / "bench.sqlite3"
        try:
            yield Scratch(f"sqlite:///{path}", str(path))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    server = make_url(url)
    if server.get_backend_name() != "postgresql":
        raise SystemExit(f"unsupported database {server.get_backend_name()!r}")
    name = f"vrm_bench_{prefix}_{secrets.token_hex(4)}"
    admin_dsn = server.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield Scratch(server.set(database=name).render_as_string(hide_password=False), name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
