"""Where the consumer finds their data: the main navigation, My account and the help."""

from __future__ import annotations

from flask.testing import FlaskClient

from vrm_portal.accounts.models import Account


def test_my_account_links_to_every_data_page(client: FlaskClient, alice: Account) -> None:
    page = client.get("/account/").get_data(as_text=True)
    for path in ("/my-data/", "/my-data/access", "/my-data/export/", "/account/delete/"):
        assert f'href="{path}"' in page, path
        assert client.get(path).status_code == 200, path


def test_the_help_explains_export_and_deletion_with_the_configured_grace(
    client: FlaskClient,
) -> None:
    client.application.config["ERASURE_GRACE"] = client.application.config["ERASURE_GRACE"] * 2
    try:
        page = client.get("/help").get_data(as_text=True)
    finally:
        client.application.config["ERASURE_GRACE"] = client.application.config["ERASURE_GRACE"] / 2
    assert 'id="my-data"' in page
    assert "in 60 days" in page
