"""Who may use the brand space: admins for every brand, a brand operator for theirs, and
nobody else, who gets a 404 on every route (from ``app.url_map``), GET and POST alike."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from tests.api.conftest import request_token
from tests.brand_space.conftest import BRAND, OTHER_BRAND
from tests.conftest import PASSWORD, csrf_token, sign_in, submit
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.brands import clients
from vrm_portal.clock import utcnow
from vrm_portal.webhooks import service as webhooks


def brand_space_rules(app: Flask) -> list[tuple[str, frozenset[str]]]:
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("brand_space.")]
    assert len(rules) >= 12, [r.rule for r in rules]
    return [(r.rule, frozenset(r.methods or ()) & {"GET", "POST"}) for r in rules]


def concrete(rule: str, slug: str, client_id: str, endpoint_id: int, delivery_id: int) -> str:
    return (
        rule.replace("<slug>", slug)
        .replace("<client_id>", client_id)
        .replace("<int:endpoint_id>", str(endpoint_id))
        .replace("<int:delivery_id>", str(delivery_id))
    )


@pytest.fixture
def objects(db_session, brand, other_brand):
    """A client and an endpoint of each brand (the operator's and the other one)."""
    made = {}
    for b in (brand, other_brand):
        created = clients.create_client(db_session, b, ["changes:read"], utcnow(), "CRM")
        endpoint, _secret = webhooks.register_endpoint(
            db_session,
            b,
            f"https://hooks.{b.slug}.example/vrm",
            allow_loopback_http=False,
            now=utcnow(),
        )
        made[b.slug] = (created.client.client_id, endpoint.id, created.secret)
    db_session.commit()
    return made


def walk(app: Flask, browser, slug: str, objects, *, csrf: str | None) -> dict[str, int]:
    """Every brand-space route for ``slug``'s objects: GET, and POST with a valid CSRF
    token (so a 404 is the gate's, not the CSRF check's)."""
    client_id, endpoint_id, _secret = objects[slug]
    statuses = {}
    for rule, methods in brand_space_rules(app):
        path = concrete(rule, slug, client_id, endpoint_id, 1)
        if "GET" in methods:
            statuses[f"GET {path}"] = browser.get(path).status_code
        if "POST" in methods:
            data = {"csrf_token": csrf} if csrf else {}
            statuses[f"POST {path}"] = browser.post(path, data=data).status_code
    return statuses


def test_every_route_is_a_404_for_everyone_else(
    app, client, new_browser, make_account, staff, objects, brand, other_brand, db_session
):
    outsiders = {}
    # Anonymous.
    outsiders["anonymous"] = (client, csrf_token(client, "/login"))
    # A consumer.
    make_account("consumer@example.com")
    consumer = new_browser()
    sign_in(consumer, "consumer@example.com")
    outsiders["consumer"] = (consumer, csrf_token(consumer, "/help"))
    # A DPO, signed in with their code.
    dpo = staff(StaffRole.DPO)
    outsiders["dpo"] = (dpo.browser, csrf_token(dpo.browser, "/help"))
    # A brand operator of the other brand, on this brand's routes.
    other = staff(StaffRole.BRAND_OPERATOR, other_brand)
    outsiders["operator of another brand"] = (
        other.browser,
        csrf_token(other.browser, "/help"),
    )
    # A brand's API token (bearer), with no cookie.
    client_id, _endpoint_id, secret = objects[BRAND]
    token = request_token(new_browser(), client_id, secret).json["access_token"]
    api = new_browser()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    outsiders["API token"] = (api, None)

    for who, (browser, csrf) in outsiders.items():
        statuses = walk(app, browser, BRAND, objects, csrf=csrf)
        if who == "operator of another brand":
            # Their own front page (their brand) is theirs; every route of this brand is not.
            landing = statuses.pop("GET /brand-space/")
            assert landing == 302, who
            assert browser.get("/brand-space/").location.endswith(f"/{OTHER_BRAND}/")
        not_found = {path: code for path, code in statuses.items() if code != 404}
        assert not not_found, f"{who}: {not_found}"


def test_admins_reach_every_brand_and_operators_their_own(app, staff, objects, brand, other_brand):
    admin = staff(StaffRole.ADMIN)
    operator = staff(StaffRole.BRAND_OPERATOR, brand)
    for who, browser, slugs in (
        ("admin", admin.browser, (BRAND, OTHER_BRAND)),
        ("operator", operator.browser, (BRAND,)),
    ):
        for slug in slugs:
            client_id, endpoint_id, _secret = objects[slug]
            for rule, methods in brand_space_rules(app):
                if "GET" not in methods:
                    continue
                path = concrete(rule, slug, client_id, endpoint_id, 1)
                assert browser.get(path).status_code in (200, 302), (who, path)
    index = admin.browser.get("/brand-space/")
    assert index.status_code == 200
    page = index.get_data(as_text=True)
    assert f"/brand-space/{BRAND}/" in page
    assert f"/brand-space/{OTHER_BRAND}/" in page
    # The operator's front page is their brand.
    landing = operator.browser.get("/brand-space/")
    assert landing.status_code == 302
    assert landing.location.endswith(f"/brand-space/{BRAND}/")
    assert OTHER_BRAND not in operator.browser.get(f"/brand-space/{BRAND}/").get_data(as_text=True)


def test_a_brand_operator_signs_in_with_a_password_and_a_code(client, make_account, brand):
    make_account("op@example.com", role=StaffRole.BRAND_OPERATOR, staff_brand_id=brand.id)
    first = submit(client, "/login", {"email": "op@example.com", "password": PASSWORD})
    # The password alone is not enough: staff enrol an authenticator app first.
    assert first.location == "/login/two-factor/setup"
    assert client.get(f"/brand-space/{BRAND}/").status_code == 404
    page = client.get("/login/two-factor/setup").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    import pyotp

    done = submit(client, "/login/two-factor/setup", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302
    assert client.get(f"/brand-space/{BRAND}/").status_code == 200


def test_the_operator_never_sees_consumer_data(operator, brand, db_session, make_account):
    """The overview shows counts only: a consumer's email never appears."""
    make_account("someone@example.com")
    for path in (
        f"/brand-space/{BRAND}/",
        f"/brand-space/{BRAND}/clients",
        f"/brand-space/{BRAND}/webhooks",
    ):
        assert "someone@example.com" not in operator.browser.get(path).get_data(as_text=True)


def test_a_brand_operator_is_created_from_the_command_line(app, connection, db_session, brand):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "vrm",
            "create-staff",
            "--email",
            "op@example.com",
            "--role",
            "brand-operator",
            "--brand",
            BRAND,
        ],
        input="a long enough passphrase\na long enough passphrase\n",
    )
    assert result.exit_code == 0, result.output
    assert f"of {BRAND}" in result.output
    account = db_session.scalars(select(Account).where(Account.email == "op@example.com")).one()
    assert (account.staff_role, account.staff_brand_id) == ("brand-operator", brand.id)

    missing = runner.invoke(
        args=["vrm", "create-staff", "--email", "x@example.com", "--role", "brand-operator"],
        input="a long enough passphrase\na long enough passphrase\n",
    )
    assert missing.exit_code != 0
    assert "needs --brand" in missing.output
    unknown = runner.invoke(
        args=[
            "vrm",
            "create-staff",
            "--email",
            "x@example.com",
            "--role",
            "brand-operator",
            "--brand",
            "nope",
        ],
        input="a long enough passphrase\na long enough passphrase\n",
    )
    assert unknown.exit_code != 0
    assert "no brand 'nope'" in unknown.output
    wrong = runner.invoke(
        args=["vrm", "create-staff", "--email", "x@example.com", "--role", "dpo", "--brand", BRAND],
        input="a long enough passphrase\na long enough passphrase\n",
    )
    assert wrong.exit_code != 0
    assert "only a brand-operator" in wrong.output
    assert (
        db_session.scalars(select(Account).where(Account.email == "x@example.com")).first() is None
    )
