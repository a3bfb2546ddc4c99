"""A consumer and a brand, each on their side: the consumer gives a consent in the browser
and the brand's API client sees it; the consumer withdraws it and the brand's next read no
longer shows it; the brand records an interaction and the consumer sees it on the brand's
page. The brand talks HTTP to the live server with a real OAuth2 token."""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.e2e.conftest import sign_in_as
from vrm_portal.accounts.models import Account
from vrm_portal.brands import clients
from vrm_portal.brands.models import BrandRelationship
from vrm_portal.brands.service import brand_by_slug
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db

pytestmark = pytest.mark.e2e

BRAND = "aurore-automobiles"
SMS = "Offers by text message"


class Brand:
    """The brand's CRM: a client of the API, over HTTP."""

    def __init__(self, base_url: str, client_id: str, secret: str) -> None:
        self.base = base_url
        self.http = requests.Session()
        token = self.http.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=10,
        )
        assert token.status_code == 200, token.text
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def consumer(self, consumer_id: str) -> dict:
        response = self.http.get(f"{self.base}/api/v1/consumers/{consumer_id}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def record(self, consumer_id: str, body: dict) -> requests.Response:
        return self.http.post(
            f"{self.base}/api/v1/consumers/{consumer_id}/interactions",
            json=body,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            timeout=10,
        )


@pytest.fixture
def brand(live_server, catalogue) -> Brand:
    with live_server.app.app_context(), Session(db.engine) as session:
        row = brand_by_slug(session, BRAND)
        assert row is not None
        created = clients.create_client(session, row, list(clients.SCOPES), utcnow(), "e2e CRM")
        session.commit()
        client_id, secret = created.client.client_id, created.secret
    return Brand(live_server.url, client_id, secret)


def pairwise_id(live_server, email: str) -> str:
    with live_server.app.app_context(), Session(db.engine) as session:
        brand_row = brand_by_slug(session, BRAND)
        assert brand_row is not None
        found = session.scalar(
            select(BrandRelationship.pairwise_id)
            .join(Account, Account.id == BrandRelationship.account_id)
            .where(Account.email == email, BrandRelationship.brand_id == brand_row.id)
        )
        assert found is not None
        return found


def purposes(consumer: dict) -> list[str]:
    return [consent["purpose"] for consent in consumer["consents"]]


def test_the_brand_sees_what_was_consented_and_the_consumer_sees_what_the_brand_did(
    page: Page, live_server, make_account, brand: Brand, check_a11y, screenshot
):
    email = make_account()
    sign_in_as(page, email)
    page.goto(f"/consents/{BRAND}")
    sms = page.get_by_role("region", name=SMS)
    sms.get_by_role("button").click()
    expect(page.locator(".flashes")).to_contain_text(f"Consent given: “{SMS}”.")

    consumer_id = pairwise_id(live_server, email)
    assert purposes(brand.consumer(consumer_id)) == ["sms-offers"]

    page.get_by_role("region", name=SMS).get_by_role("button").click()
    expect(page.locator(".flashes")).to_contain_text("withdrawn")
    assert purposes(brand.consumer(consumer_id)) == []

    recorded = brand.record(
        consumer_id,
        {
            "type": "service-visit",
            "occurred_at": "2026-11-20T09:15:00Z",
            "summary": "Annual service, Lyon Est workshop",
            "reference": "RO-77812",
            "amount": {"value": "189.90", "currency": "EUR"},
        },
    )
    assert recorded.status_code == 201, recorded.text

    page.goto(f"/consents/{BRAND}")
    section = page.get_by_role("region", name=re.compile("What Aurore Automobiles recorded"))
    expect(section).to_contain_text("Annual service, Lyon Est workshop")
    expect(section).to_contain_text("RO-77812")
    expect(section).to_contain_text("189.90")
    check_a11y(page, "a brand's page with what the brand recorded")
    screenshot(page, "brand-recorded-interactions")
