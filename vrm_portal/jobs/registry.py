"""Job kinds and their handlers: ``@handler("mail.send")`` registers a function.

A handler takes a ``JobContext`` and does its work in ``ctx.session``; the runner
commits that work together with the job's ``done`` status, after sending the emails the
handler queued with ``ctx.send``. A handler must be idempotent: delivery is at least
once (a worker killed after the work but before the commit runs it again), so it reads
the current state and does only what is still to do.

Feature packages keep their handlers beside their services (``accounts/jobs.py``,
``consent/jobs.py`` ...); ``jobs/handlers.py`` imports them all, like ``all_models``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy.orm import Session


class UnknownJobKind(LookupError):
    """No handler is registered under this name (a job from a newer or older release)."""


class PermanentJobError(Exception):
    """The job can never succeed (its data is gone or invalid): fail it without retries."""


@dataclass
class JobContext:
    """What a handler gets: its session, its payload, and a way to report progress."""

    session: Session
    job_id: str
    kind: str
    payload: dict[str, Any]
    account_id: int | None
    attempt: int
    #: Emails to send once the handler returns, before its work is committed.
    outgoing: list[EmailMessage] = field(default_factory=list)
    #: Called by ``checkpoint`` (set by the runner): commits the work so far with the
    #: progress and the handler's resume state, and extends the lease.
    _checkpoint: Callable[[int, int | None, dict[str, Any]], None] | None = None

    def send(self, message: EmailMessage) -> None:
        """Queue ``message``; it is sent after the handler, before the commit."""
        self.outgoing.append(message)

    def checkpoint(self, done: int, total: int | None, state: dict[str, Any]) -> None:
        """Commit the work done so far with its progress; ``state`` is merged into the
        payload so that a rerun (after a crash) resumes from there."""
        self.payload.update(state)
        if self._checkpoint is not None:
            self._checkpoint(done, total, state)


Handler = Callable[[JobContext], dict[str, Any] | None]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    #: Attempts before the job is marked failed.
    max_attempts: int
    #: How long a worker owns a running job before another may take it over.
    lease: timedelta
    #: The wait after the first failure; doubled after each later one (capped).
    retry_delay: timedelta
    max_retry_delay: timedelta


HANDLERS: dict[str, JobKind] = {}


def handler(
    name: str,
    *,
    max_attempts: int = 8,
    lease: timedelta = timedelta(minutes=5),
    retry_delay: timedelta = timedelta(seconds=30),
    max_retry_delay: timedelta = timedelta(hours=2),
) -> Callable[[Handler], Handler]:
    """Register ``function`` as the handler of jobs of kind ``name``."""

    def register(function: Handler) -> Handler:
        if name in HANDLERS and HANDLERS[name].handler is not function:
            raise ValueError(f"job kind {name!r} is registered twice")
        HANDLERS[name] = JobKind(name, function, max_attempts, lease, retry_delay, max_retry_delay)
        return function

    return register


def kind(name: str) -> JobKind:
    try:
        return HANDLERS[name]
    except KeyError as exc:
        raise UnknownJobKind(name) from exc


def retry_delay(job_kind: JobKind, failures: int) -> timedelta:
    """The wait after the ``failures``-th failed attempt: exponential, capped."""
    delay = job_kind.retry_delay * (1 << max(failures - 1, 0))
    return min(delay, job_kind.max_retry_delay)
