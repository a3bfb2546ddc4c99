"""Only the privacy office sees its console: every other visitor gets a 404 on every
console address; staff no longer use the consumer pages."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import csrf_token, sign_in
from vrm_portal.accounts.models import StaffRole
from vrm_portal.brands.models import Brand

SAMPLE_VALUES = {"seq": 1, "run_id": 1, "name": "csv", "reference": uuid.uuid4()}


def console_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(method, path, endpoint) for every console route, with sample path values."""
    routes = []
    with app.test_request_context():
        adapter = app.url_map.bind("localhost")
        for rule in app.url_map.iter_rules():
            if rule.endpoint.split(".")[0] != "privacy_office":
                continue
            values = {arg: SAMPLE_VALUES[arg] for arg in rule.arguments}
            path = adapter.build(rule.endpoint, values)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append((method, path, rule.endpoint))
    assert len(routes) >= 14
    return routes


def _call(browser, method: str, path: str, **kwargs):
    return browser.open(path, method=method, **kwargs)


def test_anonymous_visitors_get_404_everywhere(app, client):
    for method, path, endpoint in console_routes(app):
        assert _call(client, method, path).status_code == 404, (method, endpoint)


def test_consumers_get_404_everywhere(app, client, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    for method, path, endpoint in console_routes(app):
        assert _call(client, method, path).status_code == 404, (method, endpoint)


def test_brand_operators_get_404_everywhere(app, staff, db_session, catalogue):
    brand = db_session.scalars(select(Brand).order_by(Brand.id)).first()
    _account, browser = staff(
        StaffRole.BRAND_OPERATOR, "operator@example.com", staff_brand_id=brand.id
    )
    for method, path, endpoint in console_routes(app):
        assert _call(browser, method, path).status_code == 404, (method, endpoint)


def test_brand_api_tokens_get_404_everywhere(app, client):
    headers = {"Authorization": "Bearer not-a-session-but-a-token"}
    for method, path, endpoint in console_routes(app):
        assert _call(client, method, path, headers=headers).status_code == 404, endpoint


def test_admins_see_only_the_verification_results(app, staff):
    _account, browser = staff(StaffRole.ADMIN, "admin@example.com")
    readable = {"privacy_office.verification", "privacy_office.run", "privacy_office.run_progress"}
    assert browser.get("/office/verification").status_code == 200
    for method, path, endpoint in console_routes(app):
        status = _call(browser, method, path).status_code
        if endpoint in readable and method == "GET":
            # The sample run does not exist: a 404 of the page, not of the console.
            assert status in (200, 404), endpoint
        else:
            assert status == 404, (method, endpoint)
    page = browser.get("/office/verification").get_data(as_text=True)
    assert "Verify the whole ledger now" not in page


def test_privacy_officers_open_every_page(app, dpo):
    _account, browser = dpo
    for path in (
        "/office/",
        "/office/log",
        "/office/statistics",
        "/office/verification",
        "/office/requests",
        "/office/requests/new",
    ):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert "Privacy office sections" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/account/",
        "/consents/",
        "/interests",
        "/intents",
        "/my-data/",
        "/my-data/export/",
        "/my-data/access",
        "/account/delete/",
        "/account/attention-emails",
    ],
)
def test_staff_are_sent_to_their_console_from_consumer_pages(dpo, path):
    _account, browser = dpo
    response = browser.get(path)
    assert response.status_code == 302, path
    assert response.location == "/office/"


def test_staff_cannot_give_a_consent(dpo, catalogue, db_session):
    from sqlalchemy import func, select

    from vrm_portal.consent.models import ConsentEvent

    _account, browser = dpo
    before = db_session.scalar(select(func.count()).select_from(ConsentEvent))
    token = csrf_token(browser, "/account/sessions")
    response = browser.post(
        "/consents/maison-berlingot/sms-offers", data={"version": "1", "csrf_token": token}
    )
    assert response.status_code == 302
    assert response.location == "/office/"
    assert db_session.scalar(select(func.count()).select_from(ConsentEvent)) == before


def test_staff_keep_their_account_settings(dpo):
    _account, browser = dpo
    assert browser.get("/account/sessions").status_code == 200
    page = browser.get("/office/").get_data(as_text=True)
    assert "My consents" not in page
    assert 'href="/office/"' in page


def test_consumers_still_use_their_pages(client, make_account):
    make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    assert client.get("/consents/").status_code == 200
    assert client.get("/account/").status_code == 200
