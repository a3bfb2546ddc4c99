"""Extension instances, unbound; ``create_app`` binds them to the app."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from limits.errors import StorageError
from limits.strategies import RateLimiter

from vrm_portal.db import Database

log = logging.getLogger(__name__)

#: What a rate-limit storage that cannot be reached raises.
STORAGE_ERRORS = (redis.RedisError, StorageError, OSError)


class PortalLimiter(Limiter):
    """Flask-Limiter, failing open to a per-process count when its storage is down.

    With ``VRM_REDIS_URL`` the counters live in Redis, shared by every worker process.
    When Redis cannot be reached, each process counts in its own memory instead (every
    limit still applies, per process: with N gunicorn workers a client gets up to N times
    its budget, and the counts start again from zero), and tries Redis again every
    ``RETRY_SECONDS``; requests never fail because of it. The same holds for the limits
    checked by hand (``limiter.limiter.hit``, the brand API's budget).
    """

    #: How long a process counts in memory before it tries the storage again.
    RETRY_SECONDS = 5.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            in_memory_fallback_enabled=True,
            # A Redis that hangs must not hold a request: give up after a second.
            storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
            **kwargs,
        )
        self._storage_down_until = 0.0
        self._storage_was_down = False
        self._resilient = _ResilientStrategy(self)

    @property
    def limiter(self) -> RateLimiter:
        if self._fallback_limiter is None or self._limiter is None:
            return super().limiter
        return self._resilient  # type: ignore[return-value]

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        assert self._limiter is not None
        assert self._fallback_limiter is not None
        now = time.monotonic()
        if now >= self._storage_down_until:
            try:
                result = getattr(self._limiter, name)(*args, **kwargs)
            except STORAGE_ERRORS as error:
                if not self._storage_was_down:
                    log.warning(
                        "rate-limit storage unreachable (%s): counting in this process until "
                        "it answers again",
                        str(error).splitlines()[0][:200],
                    )
                self._storage_was_down = True
                self._storage_down_until = now + self.RETRY_SECONDS
            else:
                if self._storage_was_down:
                    log.info("rate-limit storage answers again: shared counts resume")
                    self._storage_was_down = False
                return result
        return getattr(self._fallback_limiter, name)(*args, **kwargs)


class _ResilientStrategy:
    """The strategy the views and Flask-Limiter see: the storage's, or the in-memory one."""

    def __init__(self, owner: PortalLimiter) -> None:
        self._owner = owner

    def hit(self, *args: Any, **kwargs: Any) -> Any:
        return self._owner._call("hit", *args, **kwargs)

    def test(self, *args: Any, **kwargs: Any) -> Any:
        return self._owner._call("test", *args, **kwargs)

    def get_window_stats(self, *args: Any, **kwargs: Any) -> Any:
        return self._owner._call("get_window_stats", *args, **kwargs)

    def clear(self, *args: Any, **kwargs: Any) -> Any:
        return self._owner._call("clear", *args, **kwargs)


db = Database()
csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()
limiter = PortalLimiter(key_func=get_remote_address, default_limits=[])
