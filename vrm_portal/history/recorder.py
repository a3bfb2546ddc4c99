"""Access records written off the request path: reads stay reads.

A brand's read must not turn into a write transaction (on SQLite it would take the
database's write lock, on PostgreSQL it waits for a WAL flush). The API hands each
record to this process's ``AccessRecorder``, which inserts them in batches from a
background thread: every ``interval`` seconds, as soon as ``batch`` records wait, and at
process exit. A failed insert keeps the records and retries at the next tick.

What can be lost: the records of the last ``interval`` seconds if the process is killed
outright (SIGKILL, power loss) — a graceful stop (gunicorn's SIGTERM) flushes them.
``inline`` mode (the tests) writes each record in the request's own transaction.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert

from vrm_portal.history.models import AccessKind, AccessRecord

log = logging.getLogger(__name__)
_ACCESS = cast(Table, AccessRecord.__table__)
#: Records kept while the database refuses them, before the oldest are dropped (logged).
MAX_PENDING = 200_000


def access_row(
    *,
    brand_id: int,
    client_pk: int,
    kind: AccessKind,
    scope: str,
    first_id: int,
    last_id: int,
    count: int,
    fields: Any,
    now: datetime,
) -> dict[str, Any]:
    return {
        "brand_id": brand_id,
        "client_pk": client_pk,
        "at": now,
        "kind": kind.value,
        "scope": scope,
        "first_id": first_id,
        "last_id": last_id,
        "count": count,
        "fields": sorted(fields),
    }


class AccessRecorder:
    """Buffers access rows and inserts them in batches from a daemon thread."""

    def __init__(self, engine: Engine, *, interval: float = 0.5, batch: int = 500) -> None:
        self.engine = engine
        self.interval = interval
        self.batch = batch
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid: int | None = None
        self._stopping = False
        atexit.register(self.flush)

    def add(self, row: dict[str, Any]) -> None:
        self._ensure_thread()
        with self._lock:
            self._pending.append(row)
            full = len(self._pending) >= self.batch
        if full:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Insert what waits now; returns how many rows were written (0 on failure)."""
        with self._lock:
            rows, self._pending = self._pending, []
        if not rows:
            return 0
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(_ACCESS), rows)
        except Exception:
            log.exception("could not write %d access records; will retry", len(rows))
            with self._lock:
                self._pending[:0] = rows
                overflow = len(self._pending) - MAX_PENDING
                if overflow > 0:
                    log.error("dropping the %d oldest unwritten access records", overflow)
                    del self._pending[:overflow]
            return 0
        return len(rows)

    def _ensure_thread(self) -> None:
        # A forked worker (gunicorn) inherits no thread: start one per process.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            if self._pid is not None:
                self._pending = []  # the parent's rows are the parent's to write
            self._pid = os.getpid()
        thread = threading.Thread(target=self._run, name="vrm-access-recorder", daemon=True)
        thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()
