"""Registering, listing and disabling brands' webhook endpoints; re-queueing failures.

The outbox itself is written by ``brands.feed.append_change`` in the transaction of each
change; ``webhooks.worker`` sends it. These services only ``flush()``.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vrm_portal.brands.models import Brand, BrandChange
from vrm_portal.jobs.engine import note_webhooks_due
from vrm_portal.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

MAX_URL_LENGTH = 500
SECRET_PREFIX = "whsec_"


class WebhookError(ValueError):
    """A webhook request the portal refuses; the message says why, for the operator."""


class UnsupportedScheme(WebhookError):
    def __init__(self, scheme: str, *, allow_loopback_http: bool) -> None:
        hint = (
            "use https:// (http:// is accepted only for 127.0.0.1, ::1 or localhost)"
            if allow_loopback_http
            else "use https://"
        )
        super().__init__(f"the URL scheme {scheme or '(none)'!r} is not allowed: {hint}")


class MissingHost(WebhookError):
    def __init__(self) -> None:
        super().__init__("the URL has no host name")


class MalformedUrl(WebhookError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the URL is not valid: {reason}")


class CredentialsInUrl(WebhookError):
    def __init__(self) -> None:
        super().__init__(
            "the URL must not hold a user name or password: requests are authenticated by "
            "their signature"
        )


class FragmentInUrl(WebhookError):
    def __init__(self) -> None:
        super().__init__("the URL must not have a #fragment (it is never sent to the server)")


class UrlTooLong(WebhookError):
    def __init__(self, length: int) -> None:
        super().__init__(f"the URL is {length} characters long; at most {MAX_URL_LENGTH}")


class DuplicateEndpoint(WebhookError):
    def __init__(self, endpoint_id: int) -> None:
        self.endpoint_id = endpoint_id
        super().__init__(f"the brand already has an active endpoint #{endpoint_id} at this URL")


class UnknownEndpoint(WebhookError):
    def __init__(self, endpoint_id: int) -> None:
        self.endpoint_id = endpoint_id
        super().__init__(f"no webhook endpoint #{endpoint_id} for this brand")


@dataclass(frozen=True)
class EndpointOverview:
    """An endpoint with the state of its outbox, for operators."""

    endpoint: WebhookEndpoint
    pending: int
    delivered: int
    failed: int
    last_attempt: WebhookAttempt | None


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``: addresses that never leave the host."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_url(url: str, *, allow_loopback_http: bool) -> str:
    """``url`` stripped, or a ``WebhookError`` subclass naming what is wrong with it.

    Deliveries go over HTTPS. Plain HTTP to the machine itself is allowed only in
    development and testing (``allow_loopback_http``), never in production.
    """
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise UrlTooLong(len(url))
    if any(ord(character) < 32 or ord(character) == 127 for character in url):
        raise MalformedUrl("it contains control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _port = parts.port
    except ValueError as exc:
        raise MalformedUrl(str(exc)) from exc
    scheme = parts.scheme.lower()
    if scheme not in {"https", "http"}:
        raise UnsupportedScheme(parts.scheme, allow_loopback_http=allow_loopback_http)
    if not host:
        raise MissingHost()
    if parts.username is not None or parts.password is not None:
        raise CredentialsInUrl()
    if parts.fragment or url.endswith("#"):
        raise FragmentInUrl()
    if any(character.isspace() for character in url):
        raise MalformedUrl("it contains white space")
    if scheme == "http" and not (allow_loopback_http and is_loopback_host(host)):
        raise UnsupportedScheme(parts.scheme, allow_loopback_http=allow_loopback_http)
    return url


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def register_endpoint(
    session: Session, brand: Brand, url: str, *, allow_loopback_http: bool, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint that receives ``brand``'s feed changes from now on.

    Returns the endpoint and its signing secret, which the operator passes to the brand:
    it is shown once, here. Earlier changes are not sent (the brand reads them from the
    ``/changes`` feed).
    """
    url = validate_url(url, allow_loopback_http=allow_loopback_http)
    existing = session.scalar(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.brand_id == brand.id,
            WebhookEndpoint.url == url,
            WebhookEndpoint.disabled_at.is_(None),
        )
    )
    if existing is not None:
        raise DuplicateEndpoint(existing)
    secret = new_secret()
    endpoint = WebhookEndpoint(brand_id=brand.id, url=url, secret=secret, created_at=now)
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def list_endpoints(session: Session, brand: Brand) -> list[EndpointOverview]:
    """``brand``'s endpoints (disabled ones too), oldest first, with their outbox counts."""
    endpoints = list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.brand_id == brand.id)
            .order_by(WebhookEndpoint.id)
        )
    )
    ids = [endpoint.id for endpoint in endpoints]
    counts: dict[tuple[int, str], int] = {}
    last_attempts: dict[int, WebhookAttempt] = {}
    if ids:
        for endpoint_id, status, count in session.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count())
            .where(WebhookDelivery.endpoint_id.in_(ids))
            .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.status)
        ):
            counts[(endpoint_id, status)] = count
        latest = (
            select(func.max(WebhookAttempt.id))
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookDelivery.endpoint_id.in_(ids))
            .group_by(WebhookDelivery.endpoint_id)
        )
        for attempt, endpoint_id in session.execute(
            select(WebhookAttempt, WebhookDelivery.endpoint_id)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookAttempt.id.in_(latest))
        ):
            last_attempts[endpoint_id] = attempt
    return [
        EndpointOverview(
            endpoint=endpoint,
            pending=counts.get((endpoint.id, DeliveryStatus.PENDING), 0),
            delivered=counts.get((endpoint.id, DeliveryStatus.DELIVERED), 0),
            failed=counts.get((endpoint.id, DeliveryStatus.FAILED), 0),
            last_attempt=last_attempts.get(endpoint.id),
        )
        for endpoint in endpoints
    ]


def disable_endpoint(
    session: Session, brand: Brand, endpoint_id: int, now: datetime
) -> WebhookEndpoint:
    """Stop sending to an endpoint: no new change is queued for it, queued ones stay unsent.

    Disabling twice keeps the first date. Raises ``UnknownEndpoint`` when ``endpoint_id``
    is not one of ``brand``'s endpoints.
    """
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.brand_id != brand.id:
        raise UnknownEndpoint(endpoint_id)
    if endpoint.disabled_at is None:
        endpoint.disabled_at = now
        session.flush()
    return endpoint


def retry_failed(session: Session, endpoint_id: int | None, now: datetime) -> int:
    """Queue the deliveries that gave up again (of one endpoint, or of all); returns how many.

    Each gets a fresh retry schedule. A re-queued change may reach the brand after later
    ones that were delivered meanwhile: the ``seq`` of each payload tells the order.
    """
    if endpoint_id is not None and session.get(WebhookEndpoint, endpoint_id) is None:
        raise UnknownEndpoint(endpoint_id)
    statement = (
        update(WebhookDelivery)
        .where(WebhookDelivery.status == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now)
    )
    if endpoint_id is not None:
        statement = statement.where(WebhookDelivery.endpoint_id == endpoint_id)
    ids = list(session.scalars(statement.returning(WebhookDelivery.id)))
    session.flush()
    return len(ids)


class EndpointDisabled(WebhookError):
    def __init__(self, endpoint_id: int) -> None:
        self.endpoint_id = endpoint_id
        super().__init__(f"webhook endpoint #{endpoint_id} is disabled")


class UnknownDelivery(WebhookError):
    def __init__(self, delivery_id: int) -> None:
        self.delivery_id = delivery_id
        super().__init__(f"no delivery #{delivery_id} for this endpoint")


def find_endpoint(session: Session, brand: Brand, endpoint_id: int) -> WebhookEndpoint:
    """``brand``'s endpoint ``endpoint_id``, or ``UnknownEndpoint`` (another brand's too)."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.brand_id != brand.id:
        raise UnknownEndpoint(endpoint_id)
    return endpoint


def rotate_secret(
    session: Session, endpoint: WebhookEndpoint, now: datetime, overlap: timedelta
) -> str:
    """Give ``endpoint`` a new signing key; returns it (shown once).

    For ``overlap`` every delivery carries two signatures, one with each key, so the
    brand's receiver keeps accepting deliveries whichever key it holds while it switches;
    after that only the new key signs. A key replaced earlier stops signing now.
    """
    if endpoint.disabled_at is not None:
        raise EndpointDisabled(endpoint.id)
    secret = new_secret()
    keep = overlap > timedelta(0)
    endpoint.previous_secret = endpoint.secret if keep else None
    endpoint.previous_secret_expires_at = now + overlap if keep else None
    endpoint.secret = secret
    endpoint.secret_rotated_at = now
    session.flush()
    return secret


class AlreadyQueued(WebhookError):
    def __init__(self, delivery: WebhookDelivery) -> None:
        self.delivery = delivery
        super().__init__(f"delivery #{delivery.id} is already waiting to be sent")


@dataclass(frozen=True)
class DeliveryLine:
    """A delivery of the log: the change it carries and its last attempt."""

    delivery: WebhookDelivery
    change_kind: str
    last_attempt: WebhookAttempt | None


@dataclass(frozen=True)
class DeliveryPage:
    lines: list[DeliveryLine]
    #: The id to pass as ``before`` for the next (older) page, or None on the last one.
    next_before: int | None


def delivery_log(
    session: Session, endpoint: WebhookEndpoint, *, before: int | None = None, limit: int = 25
) -> DeliveryPage:
    """The endpoint's deliveries, newest first (keyset pages on the id), each with the
    kind of change it carries and its last attempt. No consumer data: the pairwise id
    stays in the feed."""
    query = (
        select(WebhookDelivery, BrandChange.kind)
        .join(
            BrandChange,
            (BrandChange.brand_id == WebhookDelivery.brand_id)
            & (BrandChange.seq == WebhookDelivery.change_seq),
        )
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [row[0].id for row in rows]
    attempts: dict[int, WebhookAttempt] = {}
    if ids:
        latest = (
            select(func.max(WebhookAttempt.id))
            .where(WebhookAttempt.delivery_id.in_(ids))
            .group_by(WebhookAttempt.delivery_id)
        )
        for attempt in session.scalars(select(WebhookAttempt).where(WebhookAttempt.id.in_(latest))):
            attempts[attempt.delivery_id] = attempt
    lines = [DeliveryLine(row[0], row[1], attempts.get(row[0].id)) for row in rows]
    return DeliveryPage(lines, ids[-1] if more and ids else None)


def redeliver(
    session: Session, endpoint: WebhookEndpoint, delivery_id: int, now: datetime
) -> WebhookDelivery:
    """Send one delivery again, now, with a fresh retry schedule (a delivered one too:
    the brand lost it). It keeps its ``Webhook-Id``, so a receiver that already has it
    can tell. Raises ``AlreadyQueued`` for a delivery still pending: the worker owns its
    schedule (it may be sending it right now)."""
    if endpoint.disabled_at is not None:
        raise EndpointDisabled(endpoint.id)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise UnknownDelivery(delivery_id)
    if delivery.status == DeliveryStatus.PENDING:
        raise AlreadyQueued(delivery)
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.delivered_at = None
    note_webhooks_due(session)
    session.flush()
    return delivery
