"""No input to a brand-space form gives a 500: control characters, NUL, huge values,
repeated fields, on every form, as a signed-in brand operator."""

from __future__ import annotations

import re

import pytest

from tests.brand_space.conftest import BRAND, hidden_inputs
from vrm_portal.brands import clients
from vrm_portal.clock import utcnow
from vrm_portal.webhooks import service as webhooks

BASE = f"/brand-space/{BRAND}"
NASTY = [
    "\x00",
    "a\x00b",
    "https://hooks.example/\x00",
    "https://hooks\x00.example/",
    "\r\n",
    "\u202e\u200b",
    "x" * 60_000,
    "https://" + "a" * 300 + ".example/",
    "https://[::1",
    "https://hooks.example:0/",
    "<script>alert(1)</script>",
    "9" * 40,
]


@pytest.fixture
def arranged(db_session, brand):
    created = clients.create_client(db_session, brand, ["changes:read"], utcnow(), "CRM")
    endpoint, _ = webhooks.register_endpoint(
        db_session,
        brand,
        "https://hooks.aurore.example/vrm",
        allow_loopback_http=False,
        now=utcnow(),
    )
    db_session.commit()
    return created.client.client_id, endpoint.id


def test_no_form_value_gives_a_500(operator, arranged):
    client_id, endpoint_id = arranged
    forms = {
        f"{BASE}/clients": (f"{BASE}/clients", ["name", "scopes"]),
        f"{BASE}/webhooks": (f"{BASE}/webhooks", ["url"]),
        f"{BASE}/clients/{client_id}/revoke": (f"{BASE}/clients/{client_id}", ["confirm"]),
        f"{BASE}/webhooks/{endpoint_id}/disable": (
            f"{BASE}/webhooks/{endpoint_id}",
            ["disable-confirm"],
        ),
    }
    for action, (page, fields) in forms.items():
        html = operator.browser.get(page).get_data(as_text=True)
        hidden = hidden_inputs(html, action)
        key = next(name for name in hidden if name.endswith("submission"))
        for value in NASTY:
            for field in [*fields, key]:
                data = {**hidden, field: value}
                response = operator.browser.post(action, data=data)
                assert response.status_code < 500, (action, field, repr(value)[:40])
            both = {**hidden, **{field: [value, value] for field in fields}}
            response = operator.browser.post(action, data=both)
            assert response.status_code < 500, (action, "repeated", repr(value)[:40])


def test_no_address_gives_a_500(operator, arranged):
    client_id, endpoint_id = arranged
    for path in (
        f"{BASE}/clients/{'x' * 5000}",
        f"{BASE}/clients/vrm_%00",
        f"{BASE}/webhooks/{2**63}",
        f"{BASE}/webhooks/{endpoint_id}?before=-1",
        f"{BASE}/webhooks/{endpoint_id}?before={'9' * 30}",
        f"{BASE}/webhooks/{endpoint_id}?before=%00",
        f"/brand-space/{'%00'}/",
        f"/brand-space/{'x' * 3000}/clients",
    ):
        response = operator.browser.get(path)
        assert response.status_code in (200, 404), (path[:80], response.status_code)
    assert re.match(r"vrm_", client_id)
