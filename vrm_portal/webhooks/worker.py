"""The webhook worker: sends the outbox, in order per endpoint, signed, with retries.

One pass (``deliver_due``) repeats three short steps until nothing is due:

1. **Claim** (one transaction): the due head of each endpoint's queue -- the pending
   delivery with the lowest ``change_seq`` of that endpoint, if its ``next_attempt_at``
   has come -- gets ``next_attempt_at = now + lease`` and the transaction commits. A
   worker that dies after claiming loses nothing: the row becomes due again when the
   lease ends. On PostgreSQL the rows are claimed with ``FOR UPDATE SKIP LOCKED``, so
   several workers share the queue without ever sending the same delivery twice at the
   same time. On SQLite the claim runs under ``BEGIN IMMEDIATE`` (the database's write
   lock), which also serialises claims; one worker is the intended set-up there.
2. **Post**, with no transaction open: ``requests`` with a timeout, redirects not
   followed.
3. **Record** (a new transaction): the attempt in the log, then the delivery becomes
   ``delivered`` (2xx), or is scheduled again with exponential back-off and jitter, or
   ``failed`` after ``MAX_ATTEMPTS`` attempts or ``GIVE_UP_AFTER``. The update only
   applies while the claim is still ours (``next_attempt_at`` is still our lease).

Because an endpoint's next change is only claimed once the one before it is no longer
pending, each brand receives its changes in ``seq`` order. Delivery is at least once: a
worker that stops between the brand's answer and step 3 sends that delivery again after
the lease, with the same ``Webhook-Id``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import requests
from sqlalchemy import CursorResult, Engine, exists, select, update
from sqlalchemy.orm import Session, aliased

from vrm_portal.brands.feed import change_document
from vrm_portal.brands.models import BrandChange
from vrm_portal.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    signing_secrets,
)
from vrm_portal.webhooks.signing import sign_with_each

log = logging.getLogger(__name__)

#: Where the worker finds its database: an engine, or a factory of new sessions.
SessionSource = Engine | Callable[[], Session]

#: Wait after the 1st, 2nd, ... failed attempt; every later one waits ``LATER_RETRY_DELAY``.
RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
LATER_RETRY_DELAY = timedelta(hours=12)
#: Each wait is stretched or shrunk at random by up to this fraction (spreads retries).
JITTER = 0.1
MAX_ATTEMPTS = 10
#: A delivery still failing this long after its first attempt is given up.
GIVE_UP_AFTER = timedelta(days=3)
#: How long a claimed delivery stays reserved for the worker that claimed it.
LEASE = timedelta(minutes=5)
ERROR_TEXT_LIMIT = 500
USER_AGENT = "VRM-Portal-Webhooks/1"


@dataclass(frozen=True)
class Summary:
    """What one pass did."""

    delivered: int = 0
    #: Failed attempts that will be tried again.
    retrying: int = 0
    #: Deliveries given up (status ``failed``).
    failed: int = 0
    #: Attempts whose result was not recorded because their lease had ended.
    stale: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed + self.stale


@dataclass(frozen=True)
class Claim:
    """A delivery reserved by this worker until ``lease_until``, with what to send."""

    delivery_id: int
    endpoint_id: int
    url: str
    #: The signing keys: the endpoint's, and during a rotation's overlap the old one too.
    secrets: list[str]
    change_seq: int
    attempts: int
    lease_until: datetime
    body: bytes


@dataclass(frozen=True)
class Response:
    attempted_at: datetime
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(failures: int, rng: random.Random) -> timedelta:
    """The wait after the ``failures``-th failed attempt in a row, with jitter."""
    base = RETRY_DELAYS[failures - 1] if failures <= len(RETRY_DELAYS) else LATER_RETRY_DELAY
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


def deliver_due(
    sessions: SessionSource,
    now: datetime,
    *,
    batch: int = 100,
    timeout: float = 5.0,
    lease: timedelta = LEASE,
    rng: random.Random | None = None,
) -> Summary:
    """Send every delivery that is due, endpoint by endpoint in ``seq`` order.

    ``now`` is the time the pass starts (the clock moves on from it as the pass runs);
    ``batch`` bounds the rows claimed at once, ``timeout`` the seconds to wait for a
    connection and for each read of the answer. Returns when nothing is due any more.
    """
    started = time.monotonic()
    rng = rng or random.Random()

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    counts: dict[str, int] = {"delivered": 0, "retrying": 0, "failed": 0, "stale": 0}
    with requests.Session() as http:
        while claims := claim_due(sessions, clock(), batch=batch, lease=lease):
            for claim in claims:
                response = post(http, claim, clock(), timeout=timeout)
                counts[record(sessions, claim, response, rng)] += 1
    return Summary(**counts)


def claim_due(
    sessions: SessionSource, now: datetime, *, batch: int = 100, lease: timedelta = LEASE
) -> list[Claim]:
    """Reserve the due head of each active endpoint's queue until ``now + lease``; commit."""
    delivery = WebhookDelivery
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.endpoint_id == delivery.endpoint_id,
        earlier.status == DeliveryStatus.PENDING,
        earlier.change_seq < delivery.change_seq,
    )
    query = (
        select(
            delivery.id,
            delivery.endpoint_id,
            delivery.change_seq,
            delivery.attempts,
            WebhookEndpoint.url,
            WebhookEndpoint.secret,
            WebhookEndpoint.previous_secret,
            WebhookEndpoint.previous_secret_expires_at,
            BrandChange,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == delivery.endpoint_id)
        .join(
            BrandChange,
            (BrandChange.brand_id == delivery.brand_id) & (BrandChange.seq == delivery.change_seq),
        )
        .where(
            delivery.status == DeliveryStatus.PENDING,
            delivery.next_attempt_at <= now,
            WebhookEndpoint.disabled_at.is_(None),
            ~blocked,
        )
        .order_by(delivery.endpoint_id, delivery.change_seq)
        .limit(batch)
    )
    lease_until = now + lease
    with _open(sessions) as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=delivery, skip_locked=True)
        rows = session.execute(query).all()
        if not rows:
            return []
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([row.id for row in rows]))
            .values(next_attempt_at=lease_until)
            .execution_options(synchronize_session=False)
        )
        return [
            Claim(
                delivery_id=row.id,
                endpoint_id=row.endpoint_id,
                url=row.url,
                secrets=signing_secrets(
                    row.secret, row.previous_secret, row.previous_secret_expires_at, now
                ),
                change_seq=row.change_seq,
                attempts=row.attempts,
                lease_until=lease_until,
                body=payload(row.BrandChange),
            )
            for row in rows
        ]


def payload(change: BrandChange) -> bytes:
    """The request body: the feed entry exactly as ``/changes`` shows it, as JSON."""
    document = change_document(
        change.seq, change.kind, change.pairwise_id, change.occurred_at, change.data
    )
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def post(http: requests.Session, claim: Claim, at: datetime, *, timeout: float) -> Response:
    """POST one signed delivery; never raises for what the network or the brand does."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **sign_with_each(claim.secrets, str(claim.delivery_id), int(at.timestamp()), claim.body),
    }
    started = time.monotonic()
    status_code: int | None = None
    try:
        with http.post(
            claim.url,
            data=claim.body,
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
    return Response(at, status_code, error[:ERROR_TEXT_LIMIT], duration_ms)


def error_of(answer: requests.Response) -> str:
    """``HTTP <status>``, where a redirect pointed, and the start of the body."""
    error = f"HTTP {answer.status_code}"
    if answer.is_redirect:
        error += f" (redirect to {answer.headers.get('Location', '?')} not followed)"
    try:
        start = next(answer.iter_content(ERROR_TEXT_LIMIT * 4), b"")
    except requests.RequestException:
        start = b""
    text = start.decode("utf-8", errors="replace").strip()
    return f"{error}: {text}" if text else error


def record(sessions: SessionSource, claim: Claim, response: Response, rng: random.Random) -> str:
    """Log the attempt and move the delivery on; returns the counter it falls under."""
    attempts = claim.attempts + 1
    with _open(sessions) as session, session.begin():
        values: dict[str, Any] = {"attempts": attempts}
        if response.ok:
            outcome = "delivered"
            values |= {"status": DeliveryStatus.DELIVERED, "delivered_at": response.attempted_at}
        elif (
            attempts >= MAX_ATTEMPTS
            or response.attempted_at - _series_start(session, claim, response) >= GIVE_UP_AFTER
        ):
            outcome = "failed"
            values |= {"status": DeliveryStatus.FAILED}
        else:
            outcome = "retrying"
            values |= {"next_attempt_at": response.attempted_at + retry_delay(attempts, rng)}
        session.add(
            WebhookAttempt(
                delivery_id=claim.delivery_id,
                attempted_at=response.attempted_at,
                status_code=response.status_code,
                error=response.error,
                duration_ms=response.duration_ms,
            )
        )
        result = cast(
            CursorResult[Any],
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claim.delivery_id,
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                    WebhookDelivery.next_attempt_at == claim.lease_until,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount == 0:
            log.warning("webhook delivery %s: lease ended before its result", claim.delivery_id)
            return "stale"
    if outcome == "delivered":
        log.info("webhook delivery %s delivered to %s", claim.delivery_id, claim.url)
    else:
        log.warning(
            "webhook delivery %s to %s: attempt %s %s (%s)",
            claim.delivery_id,
            claim.url,
            attempts,
            "gave up" if outcome == "failed" else "failed",
            response.error,
        )
    return outcome


def _series_start(session: Session, claim: Claim, response: Response) -> datetime:
    """When the current run of attempts began (``retry_failed`` starts a new one)."""
    if claim.attempts == 0:
        return response.attempted_at
    earlier = list(
        session.scalars(
            select(WebhookAttempt.attempted_at)
            .where(WebhookAttempt.delivery_id == claim.delivery_id)
            .order_by(WebhookAttempt.id.desc())
            .limit(claim.attempts)
        )
    )
    return min(earlier, default=response.attempted_at)


def _open(sessions: SessionSource) -> Session:
    if isinstance(sessions, Engine):
        return Session(sessions, expire_on_commit=False)
    return sessions()
