"""A brand's API clients: created and revoked by operators, used through OAuth2.

Client secrets and access tokens are random (256 bits) and stored only as SHA-256
digests: for secrets of that strength a slow password hash adds nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vrm_portal.accounts.tokens import hash_secret, new_secret
from vrm_portal.brands.models import ApiClient, ApiToken, Brand
from vrm_portal.history.models import AccessRecord

#: What a brand's client may be allowed to do (DESIGN §4).
SCOPES = ("consumers:read", "changes:read", "interactions:write")


class ClientError(ValueError):
    """An operator asked for something impossible (unknown scope, unknown client)."""


@dataclass(frozen=True)
class NewClient:
    client: ApiClient
    #: Shown once, at creation; only its digest is kept.
    secret: str


@dataclass(frozen=True)
class ClientListing:
    client: ApiClient
    #: The newest of: a token issued, a read or write through the API.
    last_used_at: datetime | None


def parse_scopes(text: str) -> list[str]:
    """``"consumers:read changes:read"`` → the scopes, in catalogue order; refuses unknowns."""
    asked = text.replace(",", " ").split()
    if not asked:
        raise ClientError(f"give at least one scope among: {', '.join(SCOPES)}")
    unknown = sorted(set(asked) - set(SCOPES))
    if unknown:
        raise ClientError(
            f"unknown scope {', '.join(unknown)}; the scopes are: {', '.join(SCOPES)}"
        )
    return [scope for scope in SCOPES if scope in asked]


def create_client(
    session: Session, brand: Brand, scopes: list[str], now: datetime, name: str = ""
) -> NewClient:
    secret = new_secret()
    client = ApiClient(
        brand_id=brand.id,
        client_id=f"vrm_{secrets.token_urlsafe(18)}",
        secret_hash=hash_secret(secret),
        name=name.strip()[:120],
        scopes=" ".join(scopes),
        created_at=now,
    )
    session.add(client)
    session.flush()
    return NewClient(client, secret)


def ensure_client(
    session: Session,
    brand: Brand,
    client_id: str,
    secret: str,
    scopes: list[str],
    now: datetime,
    name: str = "",
) -> bool:
    """Create the client ``client_id`` with a chosen secret unless it exists (demo data)."""
    if find_client(session, client_id) is not None:
        return False
    session.add(
        ApiClient(
            brand_id=brand.id,
            client_id=client_id,
            secret_hash=hash_secret(secret),
            name=name,
            scopes=" ".join(scopes),
            created_at=now,
        )
    )
    session.flush()
    return True


def list_clients(session: Session, brand: Brand | None = None) -> list[ClientListing]:
    last_read = (
        select(AccessRecord.client_pk, func.max(AccessRecord.at).label("at"))
        .group_by(AccessRecord.client_pk)
        .subquery()
    )
    query = (
        select(ApiClient, last_read.c.at)
        .outerjoin(last_read, last_read.c.client_pk == ApiClient.id)
        .order_by(ApiClient.brand_id, ApiClient.id)
    )
    if brand is not None:
        query = query.where(ApiClient.brand_id == brand.id)
    listings = []
    for client, read_at in session.execute(query):
        uses = [at for at in (client.last_used_at, read_at) if at is not None]
        listings.append(ClientListing(client, max(uses) if uses else None))
    return listings


def find_client(session: Session, client_id: str) -> ApiClient | None:
    return session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))


def revoke_client(session: Session, client_id: str, now: datetime) -> ApiClient:
    """Stop a client at once: its secret and every token it holds stop working."""
    client = find_client(session, client_id)
    if client is None:
        raise ClientError(f"no API client {client_id!r}")
    if client.revoked_at is None:
        client.revoked_at = now
        client.previous_secret_hash = None
        client.previous_secret_expires_at = None
        session.execute(
            update(ApiToken)
            .where(ApiToken.client_pk == client.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        session.flush()
    return client


#: Compared with when a client has no previous secret, so every check compares twice.
_NO_DIGEST = "0" * 64


def digest_matches(client: ApiClient, digest: str, now: datetime) -> bool:
    """Whether ``digest`` (``hash_secret`` of what was sent) is that of the client's
    secret, or of the one its last rotation replaced while that one's grace period lasts.
    Both digests are always compared, so the time taken does not tell which matched."""
    current = secrets.compare_digest(client.secret_hash, digest)
    previous = secrets.compare_digest(client.previous_secret_hash or _NO_DIGEST, digest)
    in_grace = (
        client.previous_secret_hash is not None
        and client.previous_secret_expires_at is not None
        and client.previous_secret_expires_at > now
    )
    return current or (previous and in_grace)


def rotate_secret(session: Session, client: ApiClient, now: datetime, grace: timedelta) -> str:
    """Give ``client`` a new secret; returns it (shown once). The secret it replaces keeps
    working for ``grace`` (zero: it stops at once), so the brand can deploy the new one
    without downtime; a secret replaced earlier stops now. Tokens already issued live on
    until they expire: revoke the client to stop them."""
    if client.revoked_at is not None:
        raise ClientError(f"the API client {client.client_id} is revoked")
    secret = new_secret()
    client.previous_secret_hash = client.secret_hash if grace > timedelta(0) else None
    client.previous_secret_expires_at = now + grace if grace > timedelta(0) else None
    client.secret_hash = hash_secret(secret)
    client.secret_rotated_at = now
    session.flush()
    return secret


def store_token(
    session: Session, client_pk: int, token: str, scope: str, expires_in: int, now: datetime
) -> None:
    """Keep the digest of a token just issued to a client, and note the client's use."""
    session.add(
        ApiToken(
            client_pk=client_pk,
            token_hash=hash_secret(token),
            scope=scope,
            issued_at=now,
            expires_at=now + timedelta(seconds=expires_in),
        )
    )
    session.execute(update(ApiClient).where(ApiClient.id == client_pk).values(last_used_at=now))
    session.flush()
