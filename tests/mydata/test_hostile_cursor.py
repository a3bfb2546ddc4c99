"""A crafted timeline cursor at the edges of the calendar gets the page's "this link is
incomplete" notice, never a 500 (outside security test, "Account security", Low)."""

from __future__ import annotations

import base64

import pytest
from flask.testing import FlaskClient

from vrm_portal.accounts.models import Account
from vrm_portal.mydata import timeline


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59-14:00",  # past the end of year 9999 in UTC
        "9999-12-31T23:00:00-12:00",
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "0001-01-01T00:00:00+12:00",
    ],
)
@pytest.mark.parametrize("direction", ["o", "n"])
def test_a_cursor_beyond_the_calendar_in_utc_is_an_incomplete_link(
    client: FlaskClient, alice: Account, moment: str, direction: str
) -> None:
    cursor = _cursor(f"{direction}|{moment}|c|1")
    with pytest.raises(timeline.InvalidCursor):
        timeline.decode_cursor(cursor)
    page = client.get(f"/my-data/?cursor={cursor}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "This page link is incomplete or out of date" in html
    assert 'data-marker="signed_in"' in html


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59.999999+00:00",
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00-12:00",
    ],
)
@pytest.mark.parametrize("direction", ["o", "n"])
def test_a_cursor_at_the_edges_of_the_calendar_is_harmless(
    client: FlaskClient, alice: Account, moment: str, direction: str
) -> None:
    page = client.get(f"/my-data/?cursor={_cursor(f'{direction}|{moment}|c|1')}")
    assert page.status_code == 200
