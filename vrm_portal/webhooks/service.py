"""Registering, listing and disabling brands' webhook endpoints; re-queueing failures.

The outbox itself is written by ``brands.feed.append_change`` in the transaction of each
change; ``webhooks.worker`` sends it. These services only ``flush()``.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vrm_portal.brands.models import Brand
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
