"""A test request to a webhook endpoint, sent at once, so an operator sees its answer.

The ping is signed like a delivery (both keys during a rotation's overlap), with a
``Webhook-Id`` of its own (``ping-<uuid>``) that no delivery ever has, and a body of type
``ping`` that carries no consumer. It is sent while no database transaction is open
(``send``), then logged (``record``): a slow or dead receiver never holds a lock.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.clock import api_time
from vrm_portal.webhooks.models import WebhookEndpoint, WebhookPing
from vrm_portal.webhooks.signing import sign_with_each
from vrm_portal.webhooks.worker import ERROR_TEXT_LIMIT, USER_AGENT, error_of

#: Seconds to wait for the receiver to connect, and for each read of its answer.
PING_TIMEOUT = 3.0


@dataclass(frozen=True)
class PingAnswer:
    sent_at: datetime
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def ping_body(endpoint_id: int, now: datetime) -> bytes:
    document = {"type": "ping", "endpoint": endpoint_id, "sent_at": api_time(now)}
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def send(
    url: str, signing_secrets: list[str], endpoint_id: int, now: datetime, *, timeout: float
) -> PingAnswer:
    """POST the ping; never raises for what the network or the receiver does."""
    body = ping_body(endpoint_id, now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **sign_with_each(signing_secrets, f"ping-{uuid.uuid4()}", int(now.timestamp()), body),
    }
    started = time.monotonic()
    status_code: int | None = None
    try:
        with requests.post(
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as answer:
            status_code = answer.status_code
            error = "" if 200 <= status_code < 300 else error_of(answer)
    except requests.Timeout:
        error = f"timed out after {timeout:g} s"
    except requests.ConnectionError as exc:
        error = f"connection failed: {exc}"
    except requests.RequestException as exc:
        error = f"request failed: {exc}"
    duration_ms = round((time.monotonic() - started) * 1000)
    return PingAnswer(now, status_code, error[:ERROR_TEXT_LIMIT], duration_ms)


def record(session: Session, endpoint: WebhookEndpoint, answer: PingAnswer) -> WebhookPing:
    """Log a ping's answer in the caller's transaction."""
    row = WebhookPing(
        endpoint_id=endpoint.id,
        sent_at=answer.sent_at,
        status_code=answer.status_code,
        error=answer.error,
        duration_ms=answer.duration_ms,
    )
    session.add(row)
    session.flush()
    return row


def recent_pings(session: Session, endpoint: WebhookEndpoint, limit: int = 10) -> list[WebhookPing]:
    """The endpoint's last pings, newest first."""
    return list(
        session.scalars(
            select(WebhookPing)
            .where(WebhookPing.endpoint_id == endpoint.id)
            .order_by(WebhookPing.id.desc())
            .limit(limit)
        )
    )
