"""With VRM_REDIS_URL, rate-limit counters are shared by every worker process.

Two separate processes (as two gunicorn workers would be) sign in with wrong passwords
for one address: the attempts add up in Redis, so the second process is refused first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import redis

from vrm_portal import schema
from vrm_portal.db import create_db_engine

REDIS_URL = "redis://127.0.0.1:6379/15"
ROOT = Path(__file__).resolve().parent.parent

#: One "worker": an app on the shared database and Redis, making failed sign-ins.
WORKER = """
import json, sys
from vrm_portal import create_app

database_url, redis_url, email, attempts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
app = create_app({
    "DATABASE_URL": database_url,
    "REDIS_URL": redis_url,
    # CSRF runs before the limiter and is tested elsewhere; here only the counter matters.
    "WTF_CSRF_ENABLED": False,
    "ARGON2_PARAMETERS": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
})
client = app.test_client()
codes = [
    client.post("/login", data={"email": email, "password": "wrong password 123"}).status_code
    for _ in range(attempts)
]
app.extensions["vrm_db"].engine.dispose()
print(json.dumps(codes))
"""


def _worker(database_url: str, email: str, attempts: int) -> list[int]:
    env = {**os.environ, "VRM_ENV": "testing", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", WORKER, database_url, REDIS_URL, email, str(attempts)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    codes: list[int] = json.loads(result.stdout.strip().splitlines()[-1])
    return codes


def test_two_workers_share_the_sign_in_limit_through_redis(scratch_database_url):
    engine = create_db_engine(scratch_database_url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()
    email = f"shared-{uuid.uuid4().hex[:10]}@example.com"
    # Database 15 belongs to this test: counters from an earlier run must not count.
    with redis.Redis.from_url(REDIS_URL) as store:
        store.flushdb()

    first = _worker(scratch_database_url, email, 5)
    second = _worker(scratch_database_url, email, 1)

    assert first == [422] * 5
    assert second == [429]
