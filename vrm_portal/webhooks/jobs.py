"""The webhook outbox on the job engine: a pass of the worker after each committed change
for a brand with endpoints (``vrm.webhooks``), and a sweep every minute for retries."""

from __future__ import annotations

from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.webhooks.worker import Summary, deliver_due


def deliver_pass() -> Summary:
    """Send what is due now, in ``seq`` order per endpoint (see ``webhooks/worker.py``)."""
    return deliver_due(db.engine, utcnow())
