"""Schemathesis hooks for the CLI run of ``test_schemathesis.py`` (``SCHEMATHESIS_HOOKS``).

An interaction's ``occurred_at`` must lie between 1900 and now (give or take the clock
skew the API allows). JSON Schema cannot say "not in the future", so the document says it
in words and answers 422; and an Idempotency-Key reused with another body (an earlier
case's key) is refused whatever its shape. Those two refusals of schema-valid data are not
failures; any other 422 still is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import schemathesis

from vrm_portal.api.views import CLOCK_SKEW, EARLIEST_OCCURRED_AT
from vrm_portal.clock import utcnow


def _outside_the_window(value: Any) -> bool:
    try:
        moment = datetime.fromisoformat(str(value).replace("z", "Z"))
    except ValueError:
        return False
    if moment.tzinfo is None:
        return False
    try:
        return not EARLIEST_OCCURRED_AT <= moment <= utcnow() + CLOCK_SKEW
    except OverflowError:
        return True


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a valid interaction refused for its time alone."""
    if type(failure).__name__ != "RejectedPositiveData" or response.status_code != 422:
        return True
    problem = response.json() or {}
    if str(problem.get("type", "")).endswith("#problem-idempotency-key-reused"):
        # State, not shape: the generator sent a key an earlier case used for another body.
        return False
    body = case.body if isinstance(case.body, dict) else {}
    errors = problem.get("errors") or []
    only_the_time = [error.get("field") for error in errors] == ["occurred_at"]
    return not (only_the_time and _outside_the_window(body.get("occurred_at")))
