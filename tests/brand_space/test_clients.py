"""API clients in the brand space: create (secret shown once), rotate with a grace period,
revoke, the reads chart; all through the pages, checked over HTTP at the token endpoint."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from sqlalchemy import select, update

from tests.api.conftest import request_token
from tests.brand_space.conftest import BRAND, hidden_inputs, send
from vrm_portal.audit.models import StaffAction
from vrm_portal.audit.service import Filters, export_csv
from vrm_portal.brands import feed
from vrm_portal.brands.models import ApiClient, ChangeKind
from vrm_portal.clock import utcnow

BASE = f"/brand-space/{BRAND}"


def create(operator, name="CRM", scopes=("consumers:read", "changes:read")):
    response = send(
        operator.browser,
        f"{BASE}/clients",
        {"name": name, "scopes": list(scopes)},
        page=f"{BASE}/clients",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    client_id = re.search(r"<code class=\"break\">(vrm_[^<]+)</code>", html).group(1)
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', html).group(1)
    return client_id, secret, response


def token_status(http, client_id, secret):
    return request_token(http, client_id, secret).status_code


def test_create_shows_the_secret_once_and_it_gets_a_token(operator, client, db_session):
    client_id, secret, response = create(operator)
    html = response.get_data(as_text=True)
    assert "shown only this once" in html
    assert 'data-copy-target="new-secret"' in html  # the copy button (revealed by the JS)
    assert response.headers["Cache-Control"] == "no-store"
    token = request_token(client, client_id, secret)
    assert token.status_code == 200
    assert token.json["scope"] == "consumers:read changes:read"
    row = db_session.scalars(select(ApiClient).where(ApiClient.client_id == client_id)).one()
    assert (row.name, row.scopes) == ("CRM", "consumers:read changes:read")
    action = db_session.scalars(
        select(StaffAction).where(StaffAction.action == "api_client.created")
    ).one()
    assert action.actor_email == operator.account.email
    assert action.object_id == client_id
    assert secret not in str(action.after)


def test_no_page_shows_a_secret_after_its_creation_page(operator, client, db_session):
    client_id, secret, _ = create(operator)
    rotated = send(
        operator.browser,
        f"{BASE}/clients/{client_id}/rotate",
        {},
        page=f"{BASE}/clients/{client_id}",
    ).get_data(as_text=True)
    new_secret = re.search(r'<code id="new-secret">([^<]+)</code>', rotated).group(1)
    request_token(client, client_id, new_secret)  # a last use, a read
    pages = [
        "/brand-space/",
        f"{BASE}/",
        f"{BASE}/clients",
        f"{BASE}/clients/{client_id}",
        f"{BASE}/clients/{client_id}/reads.svg",
    ]
    for path in pages:
        body = operator.browser.get(path, follow_redirects=True).get_data(as_text=True)
        assert secret not in body, path
        assert new_secret not in body, path
    trail = "".join(export_csv(db_session, Filters()))
    assert client_id in trail
    assert secret not in trail
    assert new_secret not in trail


def test_a_double_submit_creates_one_client(operator, db_session):
    html = operator.browser.get(f"{BASE}/clients").get_data(as_text=True)
    hidden = hidden_inputs(html, f"{BASE}/clients")
    data = {**hidden, "name": "Twice", "scopes": ["changes:read"]}
    first = operator.browser.post(f"{BASE}/clients", data=data)
    assert first.status_code == 200
    second = operator.browser.post(f"{BASE}/clients", data=data)
    assert second.status_code == 303
    landing = operator.browser.get(second.location).get_data(as_text=True)
    assert "This form was already sent" in landing
    assert re.search(r'<code id="new-secret">', landing) is None
    named = db_session.scalars(select(ApiClient).where(ApiClient.name == "Twice")).all()
    assert len(named) == 1
    assert second.location.endswith(f"/clients/{named[0].client_id}")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "scopes": ["changes:read"]}, "Give the client a name."),
        ({"name": "x" * 121, "scopes": ["changes:read"]}, "at most 120 characters"),
        ({"name": "CRM\nx", "scopes": ["changes:read"]}, "cannot contain control characters"),
        ({"name": "CRM"}, "Choose at least one thing the client may do."),
        ({"name": "CRM", "scopes": ["admin"]}, "Unknown scope: admin."),
        ({"name": "CRM", "scopes": ["changes:read"], "submission": ""}, "out of date"),
        ({"name": "CRM", "scopes": ["changes:read"], "submission": "<bad>"}, "out of date"),
        ({"name": "CRM", "scopes": ["changes:read"], "csrf_token": "forged"}, "CSRF"),
    ],
)
def test_bad_input_gets_a_precise_message_and_creates_nothing(operator, db_session, data, message):
    response = send(operator.browser, f"{BASE}/clients", data, page=f"{BASE}/clients")
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db_session.scalars(select(ApiClient)).first() is None


def test_rotation_keeps_the_old_secret_working_for_the_grace_period_only(
    operator, client, db_session
):
    client_id, old, _ = create(operator)
    response = send(
        operator.browser,
        f"{BASE}/clients/{client_id}/rotate",
        {},
        page=f"{BASE}/clients/{client_id}",
    )
    html = response.get_data(as_text=True)
    assert "The old secret keeps working until" in html
    new = re.search(r'<code id="new-secret">([^<]+)</code>', html).group(1)
    assert new != old
    # During the overlap both secrets get a token, over HTTP.
    assert token_status(client, client_id, old) == 200
    assert token_status(client, client_id, new) == 200
    row = db_session.scalars(select(ApiClient).where(ApiClient.client_id == client_id)).one()
    grace = row.previous_secret_expires_at - row.secret_rotated_at
    assert grace == timedelta(hours=24)
    rotated = db_session.scalars(
        select(StaffAction).where(StaffAction.action == "api_client.secret_rotated")
    ).one()
    assert rotated.after["previous_one_works_until"] == row.previous_secret_expires_at.isoformat()
    assert rotated.before["previous_one_works_until"] is None
    page = operator.browser.get(f"{BASE}/clients/{client_id}").get_data(as_text=True)
    assert "The previous secret also works until" in page
    # The grace period is over: the old secret stops, the new one goes on.
    db_session.execute(
        update(ApiClient)
        .where(ApiClient.id == row.id)
        .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
    )
    db_session.commit()
    refused = request_token(client, client_id, old)
    assert refused.status_code == 401
    assert refused.json["error"] == "invalid_client"
    assert token_status(client, client_id, new) == 200
    assert "The previous secret also works" not in operator.browser.get(
        f"{BASE}/clients/{client_id}"
    ).get_data(as_text=True)


def test_a_second_rotation_ends_the_first_ones_grace(operator, client):
    client_id, first, _ = create(operator)
    secrets_seen = [first]
    for _ in range(2):
        html = send(
            operator.browser,
            f"{BASE}/clients/{client_id}/rotate",
            {},
            page=f"{BASE}/clients/{client_id}",
        ).get_data(as_text=True)
        secrets_seen.append(re.search(r'<code id="new-secret">([^<]+)</code>', html).group(1))
    assert [token_status(client, client_id, s) for s in secrets_seen] == [401, 200, 200]


def test_a_double_submitted_rotation_rotates_once(operator, client):
    client_id, old, _ = create(operator)
    html = operator.browser.get(f"{BASE}/clients/{client_id}").get_data(as_text=True)
    hidden = hidden_inputs(html, f"{BASE}/clients/{client_id}/rotate")
    first = operator.browser.post(f"{BASE}/clients/{client_id}/rotate", data=hidden)
    new = re.search(r'<code id="new-secret">([^<]+)</code>', first.get_data(as_text=True)).group(1)
    second = operator.browser.post(f"{BASE}/clients/{client_id}/rotate", data=hidden)
    assert second.status_code == 303
    assert "the secret was rotated then" in operator.browser.get(second.location).get_data(
        as_text=True
    )
    # Rotated once: the original secret is still in its grace period.
    assert token_status(client, client_id, old) == 200
    assert token_status(client, client_id, new) == 200


def test_without_a_grace_period_the_old_secret_stops_at_once(app, operator, client):
    client_id, old, _ = create(operator)
    app.config["CLIENT_SECRET_GRACE_HOURS"] = 0
    try:
        html = send(
            operator.browser,
            f"{BASE}/clients/{client_id}/rotate",
            {},
            page=f"{BASE}/clients/{client_id}",
        ).get_data(as_text=True)
    finally:
        app.config["CLIENT_SECRET_GRACE_HOURS"] = 24
    assert "The old secret stopped working at once." in html
    assert token_status(client, client_id, old) == 401


def test_revoking_needs_a_tick_then_stops_the_tokens_at_once(operator, client, db_session):
    client_id, secret, _ = create(operator)
    token = request_token(client, client_id, secret).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/changes", headers=headers).status_code == 200
    unticked = send(
        operator.browser,
        f"{BASE}/clients/{client_id}/revoke",
        {},
        page=f"{BASE}/clients/{client_id}",
    )
    assert unticked.status_code == 422
    assert "Tick the box to confirm." in unticked.get_data(as_text=True)
    assert client.get("/api/v1/changes", headers=headers).status_code == 200
    done = send(
        operator.browser,
        f"{BASE}/clients/{client_id}/revoke",
        {"confirm": "y"},
        page=f"{BASE}/clients/{client_id}",
    )
    assert done.status_code == 303
    assert "revoked" in operator.browser.get(done.location).get_data(as_text=True)
    assert client.get("/api/v1/changes", headers=headers).status_code == 401
    assert token_status(client, client_id, secret) == 401
    assert (
        db_session.scalars(select(StaffAction).where(StaffAction.action == "api_client.revoked"))
        .one()
        .object_id
        == client_id
    )
    # A revoked client offers neither rotation nor revocation.
    page = operator.browser.get(f"{BASE}/clients/{client_id}").get_data(as_text=True)
    assert "/rotate" not in page
    assert "/revoke" not in page


def test_the_reads_of_the_last_30_days_as_a_chart_and_a_table(operator, client, brand, db_session):
    for _ in range(2):  # two feed entries: each read returns them
        feed.append_change(
            db_session,
            brand.id,
            ChangeKind.CONSENT_GRANTED,
            str(uuid.uuid4()),
            utcnow(),
            {"purpose": "email-offers", "version": 1, "method": "portal", "expires_at": None},
        )
    db_session.commit()
    client_id, secret, _ = create(operator)
    page = operator.browser.get(f"{BASE}/clients/{client_id}").get_data(as_text=True)
    assert "This client read nothing in the last 30 days." in page
    assert "<dt>Last use</dt><dd>Never</dd>" in page
    token = request_token(client, client_id, secret).json["access_token"]
    for _ in range(3):
        assert (
            client.get("/api/v1/changes", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )
    page = operator.browser.get(f"{BASE}/clients/{client_id}").get_data(as_text=True)
    assert "Read requests per day (UTC): 3 in all." in page
    rows = re.findall(r'<td data-label="Read requests">(\d+)</td>', page)
    assert len(rows) == 30
    assert rows[-1] == "3"
    assert set(rows[:-1]) == {"0"}
    assert "<dt>Last use</dt><dd>Never</dd>" not in page
    chart = operator.browser.get(f"{BASE}/clients/{client_id}/reads.svg")
    assert chart.status_code == 200
    assert chart.mimetype == "image/svg+xml"
    svg = chart.get_data(as_text=True)
    assert "<svg" in svg
    assert "<script" not in svg
    ElementTree.fromstring(svg.encode())  # noqa: S314 -- our own output, well-formed
    assert chart.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert re.findall(r'<td data-label="Records returned">(\d+)</td>', page)[-1] == "6"
    overview = operator.browser.get(f"{BASE}/").get_data(as_text=True)
    assert "Read requests in the last 30 days: 3 (6 records returned)." in overview
    assert "<code>consent.granted</code>" in overview  # the feed statistics, by type
