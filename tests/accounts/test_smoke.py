from tests.conftest import sign_in


def test_sign_in_reaches_account(client, make_account):
    make_account()
    sign_in(client)
    page = client.get("/account/")
    assert page.status_code == 200
    assert "alice@example.com" in page.get_data(as_text=True)
