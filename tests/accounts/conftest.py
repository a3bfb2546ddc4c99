"""Fixtures shared by the accounts tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.conftest import sign_in
from vrm_portal.accounts.models import Account


@pytest.fixture
def alice(client: FlaskClient, make_account: Callable[..., Account]) -> Account:
    """Alice, with an account, signed in in the test's main browser."""
    account = make_account("alice@example.com")
    sign_in(client, "alice@example.com")
    return account
