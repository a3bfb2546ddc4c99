"""Fixtures of the social sign-in tests: the provider, well-behaved at each test's start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.identity_provider import RunningProvider


@pytest.fixture
def idp(identity_provider: RunningProvider) -> Iterator[RunningProvider]:
    """The test provider; quirks set by a test are undone after it."""
    identity_provider.reset()
    yield identity_provider
    identity_provider.reset()
