"""``jobs.noop``: a job that does nothing (or waits), to measure the engine and to test
what happens to a job whose worker is killed."""

from __future__ import annotations

import time
from typing import Any

from vrm_portal.jobs.registry import JobContext, handler


@handler("jobs.noop", max_attempts=3)
def noop(ctx: JobContext) -> dict[str, Any]:
    """Wait ``seconds`` (default 0), then finish; the result names the attempt."""
    seconds = float(ctx.payload.get("seconds", 0))
    if seconds > 0:
        time.sleep(min(seconds, 60.0))
    if ctx.payload.get("fail"):
        raise RuntimeError(str(ctx.payload["fail"]))
    return {"attempt": ctx.attempt}
