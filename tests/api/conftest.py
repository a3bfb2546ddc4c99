"""Fixtures for the brand API: brands' clients, tokens, and consumers with consents."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.consent.conftest import catalogue, notary
from vrm_portal.accounts.models import Account
from vrm_portal.brands import clients
from vrm_portal.brands.service import brand_by_slug, pairwise_id_for
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change, Notary

__all__ = ["catalogue", "notary"]

ALL_SCOPES = "consumers:read changes:read interactions:write"


@dataclass
class BrandApi:
    """A brand's API client, calling the app with a token, as a brand's CRM would."""

    http: FlaskClient
    client_id: str
    secret: str
    token: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.http.get(path, headers=self.headers(), **kwargs)

    def post(self, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.http.post(path, json=json, headers=self.headers(**(headers or {})))


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def request_token(http: FlaskClient, client_id: str, secret: str, scope: str | None = None) -> Any:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return http.post("/oauth/token", data=data, headers=basic(client_id, secret))


@pytest.fixture
def brand_api(
    app: Flask, client: FlaskClient, db_session: Session, catalogue: None
) -> Callable[..., BrandApi]:
    """``brand_api("aurore-automobiles", scopes=...)``: a client of that brand with a token."""

    def make(slug: str = "aurore-automobiles", scopes: str = ALL_SCOPES) -> BrandApi:
        brand = brand_by_slug(db_session, slug)
        assert brand is not None
        created = clients.create_client(
            db_session, brand, clients.parse_scopes(scopes), utcnow(), "CRM"
        )
        db_session.commit()
        response = request_token(client, created.client.client_id, created.secret)
        assert response.status_code == 200, response.get_data(as_text=True)
        return BrandApi(
            client, created.client.client_id, created.secret, response.json["access_token"]
        )

    return make


@pytest.fixture
def consents(db_session: Session, notary: Notary) -> Callable[..., None]:
    """``consents(account, "aurore-automobiles", grant=[...], withdraw=[...])``."""

    def apply(
        account: Account,
        brand: str,
        grant: tuple[str, ...] = (),
        withdraw: tuple[str, ...] = (),
    ) -> None:
        change = Change(CollectionMethod.IMPORT, "en", utcnow())
        for key in grant:
            purpose = service.find_purpose(db_session, brand, key)
            service.grant(
                db_session,
                notary,
                account,
                purpose,
                shown_version=purpose.current_version,
                change=change,
            )
        for key in withdraw:
            purpose = service.find_purpose(db_session, brand, key)
            service.withdraw(db_session, notary, account, purpose, change=change)
        db_session.commit()

    return apply


@pytest.fixture
def pairwise(db_session: Session) -> Callable[[Account, str], str]:
    def of(account: Account, slug: str) -> str:
        brand = brand_by_slug(db_session, slug)
        assert brand is not None
        return pairwise_id_for(db_session, account.id, brand)

    return of
