"""Probes for load balancers and orchestrators: alive, and ready.

``/readyz`` names each dependency and its state: ``database`` always, ``rate_limits``
when the rate limits are stored in Redis (``VRM_REDIS_URL``), ``jobs_queue`` when the
job queue is a Redis (``VRM_JOBS_URL``). Only the database makes the portal unready
(503): without Redis it keeps serving (rate limits counted per process, jobs kept in the
database until the queue answers), so a Redis outage must not take every instance out
of the load balancer; it answers 200 ``"status": "degraded"`` naming what is down.
"""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from vrm_portal.db import READ_ONLY
from vrm_portal.extensions import db

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

#: Seconds a probe waits for Redis before calling it unreachable.
REDIS_TIMEOUT = 1.0


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


def _database_ok() -> bool:
    try:
        with db.engine.connect() as connection:
            connection.execution_options(**READ_ONLY).execute(text("SELECT 1"))
    except SQLAlchemyError:
        log.warning("readiness check failed: database unreachable", exc_info=True)
        return False
    return True


def _redis_ok(url: str) -> bool:
    try:
        with redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        ) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError) as error:
        log.warning("readiness check failed: Redis unreachable at %s: %s", _safe(url), error)
        return False


def _safe(url: str) -> str:
    """The URL without its password (for the log)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _is_redis(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("redis://", "rediss://", "unix://"))


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    checks = {"database": "ok" if _database_ok() else "unreachable"}
    answers: dict[str, bool] = {}  # one ping per Redis, however many roles it has

    def redis_state(url: str) -> str:
        if url not in answers:
            answers[url] = _redis_ok(url)
        return "ok" if answers[url] else "unreachable"

    limits_url = current_app.config["REDIS_URL"]
    if _is_redis(limits_url):
        checks["rate_limits"] = redis_state(limits_url)
    jobs_url = current_app.config["JOBS_URL"]
    if _is_redis(jobs_url):
        checks["jobs_queue"] = redis_state(jobs_url)
    if checks["database"] != "ok":
        return jsonify(status="unavailable", checks=checks), 503
    if any(state != "ok" for state in checks.values()):
        return jsonify(status="degraded", checks=checks)
    return jsonify(status="ready", checks=checks)
