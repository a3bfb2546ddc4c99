"""Probes for load balancers and orchestrators: alive, and ready (database reachable, and
Redis too when the rate limits are stored there)."""

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
        with redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2) as client:
            return bool(client.ping())
    except redis.RedisError:
        log.warning("readiness check failed: Redis unreachable", exc_info=True)
        return False


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    checks = {"database": "ok" if _database_ok() else "unreachable"}
    redis_url = current_app.config["REDIS_URL"]
    if redis_url:
        checks["redis"] = "ok" if _redis_ok(redis_url) else "unreachable"
    if any(state != "ok" for state in checks.values()):
        return jsonify(status="unavailable", checks=checks), 503
    return jsonify(status="ready", checks=checks)
