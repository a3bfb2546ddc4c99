"""The log's tests reuse the consent tests' catalogue, notary and change factory."""

from tests.consent.conftest import catalogue, change, notary  # noqa: F401
