"""Every console route answers 404 to everyone not admitted: consumers, brand operators,
DPOs (outside the draft review and the audit trail), anonymous visitors, and API
clients with a bearer token. Admins reach every route."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from tests.admin.conftest import page_text
from tests.api.conftest import brand_api  # noqa: F401  (fixture)
from vrm_portal.admin.blueprint import DPO_ENDPOINTS


def console_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) of every console route, with 1 for each number and a
    plausible word for each other address part."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        path = re.sub(r"<int:[^>]+>", "1", rule.rule)
        path = re.sub(r"<(?:string:)?slug>", "maison-berlingot", path)
        path = re.sub(r"<[^>]+>", "x", path)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, path))
    return routes


def test_the_console_has_the_routes_the_matrix_walks(app):
    endpoints = {endpoint for endpoint, _m, _p in console_routes(app)}
    assert len(endpoints) >= 25
    assert endpoints >= DPO_ENDPOINTS


@pytest.mark.parametrize("role", ["consumer", "brand-operator", "dpo", "anonymous", "token"])
def test_every_route_is_a_404_to_those_not_admitted(app, role, as_role, new_browser, brand_api):  # noqa: F811
    headers = {}
    if role == "anonymous":
        browser = new_browser()
    elif role == "token":
        browser = new_browser()
        headers = {"Authorization": f"Bearer {brand_api('maison-berlingot').token}"}
    else:
        browser, _account = as_role(role)
    for endpoint, method, path in console_routes(app):
        if role == "dpo" and endpoint in DPO_ENDPOINTS:
            continue
        response = browser.open(path, method=method, headers=headers, data={})
        assert response.status_code == 404, (role, method, path, response.status_code)


def test_a_dpo_reaches_the_review_and_the_audit_trail_only(as_role):
    browser, _dpo = as_role("dpo")
    assert browser.get("/admin/drafts").status_code == 200
    assert browser.get("/admin/audit").status_code == 200
    assert browser.get("/admin/audit/export.csv").status_code == 200
    assert browser.get("/admin/").status_code == 404
    assert browser.get("/admin/staff").status_code == 404


def test_admins_reach_every_page(app, as_role):
    browser, _admin = as_role("admin")
    for endpoint, method, path in console_routes(app):
        if method != "GET" or "<" in path:
            continue
        response = browser.get(path)
        # Pages of a named object that does not exist (id 1, key "x") are 404s too.
        assert response.status_code in (200, 404), (endpoint, path, response.status_code)
        if "/x" not in path and "/1" not in path:
            assert response.status_code == 200, (endpoint, path)


def test_a_post_without_csrf_token_is_refused_for_an_admin(as_role):
    browser, _admin = as_role("admin")
    response = browser.post("/admin/brands/new", data={"slug": "nope"})
    assert response.status_code == 400


def test_a_disabled_admin_is_signed_out_at_once(as_role, db_session):
    browser, admin = as_role("admin")
    _other, _second = as_role("admin", email="second-admin@example.com")
    assert browser.get("/admin/").status_code == 200
    from vrm_portal.clock import utcnow

    admin.disabled_at = utcnow()
    db_session.commit()
    assert browser.get("/admin/").status_code == 404
    assert "Administration" not in page_text(browser.get("/admin/brands"))
