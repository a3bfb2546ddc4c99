"""A provider's email address is held to the rules of the sign-up form: the same checks
(email-validator) and the same canonical form. What fails creates nothing, links nothing
and is explained on a page; a sign-in through an identity already linked still works."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.accounts.flows import account_by_email, count_accounts, is_signed_in, reloaded, text
from tests.accounts.social.flows import (
    at_provider,
    back_to_portal,
    continue_with,
    identities_of,
    identity_row,
    start_link,
)
from tests.identity_provider import PROVIDER
from vrm_portal.accounts.social import service
from vrm_portal.accounts.social.errors import InvalidProviderEmail
from vrm_portal.accounts.social.models import LinkedIdentity, PendingIdentityLink

#: Addresses a provider vouched for in the outside security test, and the reason each
#: must be refused with.
REFUSED = {
    "line break": ("sam@example.com\r\nBcc: eve@example.net", "hidden_characters"),
    "trailing dot": ("sam@example.com.", "incomplete_domain"),
    "no dot in the domain": ("sam@localhost", "incomplete_domain"),
    "zero-width space": ("sa\u200bm@example.com", "hidden_characters"),
}
#: What the refusal page says for each reason.
EXPLANATION = {
    "hidden_characters": "line breaks, invisible or control characters",
    "incomplete_domain": "is not a complete domain name",
}


def nothing_stored(db_session) -> bool:
    db_session.expire_all()
    links = db_session.scalar(select(func.count(LinkedIdentity.id)))
    pending = db_session.scalar(select(func.count(PendingIdentityLink.id)))
    return links == 0 and pending == 0


@pytest.mark.parametrize(("address", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_a_first_sign_in_with_a_malformed_address_creates_nothing(
    client, db_session, idp, address, reason
):
    response = continue_with(client, email=address, subject="sam-odd")

    body = text(response)
    assert response.status_code == 400, body
    assert "This email address cannot be used" in body
    assert "Test ID gave us an email address we cannot accept" in body
    assert EXPLANATION[reason] in body
    assert "No account was created or linked" in body
    assert 'href="/login"' in body
    assert count_accounts(db_session) == 0
    assert nothing_stored(db_session)
    assert not is_signed_in(client)


def test_a_look_alike_of_an_existing_address_neither_joins_nor_duplicates_it(
    client, make_account, db_session, idp
):
    alice = make_account("alice@example.com")

    response = continue_with(client, email="ali\u200bce@example.com", subject="not-alice")

    assert response.status_code == 400
    assert EXPLANATION["hidden_characters"] in text(response)
    assert count_accounts(db_session) == 1
    assert identities_of(db_session, alice) == []
    assert nothing_stored(db_session)
    assert not is_signed_in(client)


def test_a_provider_address_gets_the_canonical_form_of_the_sign_up_form(client, db_session, idp):
    # "é" as "e" + a combining accent: the sign-up form stores it composed (NFC).
    response = continue_with(client, email="Jose\u0301@Example.COM", subject="jose")

    assert response.status_code == 302
    account = account_by_email(db_session, "josé@example.com")
    assert account is not None
    assert identity_row(db_session, PROVIDER, "jose").email_seen == "josé@example.com"


def test_a_canonical_form_finds_the_existing_account_and_asks_for_proof(
    client, make_account, db_session, idp
):
    alice = make_account("josé@example.com")

    response = continue_with(client, email="JOSE\u0301@example.com", subject="jose")

    assert response.location == "/auth/oauth/link/confirm"
    assert count_accounts(db_session) == 1
    db_session.expire_all()
    [pending] = db_session.scalars(select(PendingIdentityLink)).all()
    assert (pending.account_id, pending.email) == (alice.id, "josé@example.com")


def test_a_linked_identity_still_signs_in_but_a_malformed_address_is_not_kept(
    client, new_browser, db_session, idp
):
    continue_with(client, email="sam@example.com", subject="sam-kept")
    sam = account_by_email(db_session, "sam@example.com")

    later = new_browser()
    response = continue_with(
        later, email="sam@example.com\r\nBcc: eve@example.net", subject="sam-kept"
    )

    assert response.location == "/account/"
    assert is_signed_in(later)
    assert identity_row(db_session, PROVIDER, "sam-kept").email_seen == "sam@example.com"
    assert reloaded(db_session, sam).email == "sam@example.com"


def test_linking_from_the_settings_refuses_a_malformed_address(client, alice, db_session, idp):
    location = at_provider(start_link(client), email="alice@localhost", subject="alice-odd")
    response = back_to_portal(client, location)

    body = text(response)
    assert response.status_code == 400, body
    assert EXPLANATION["incomplete_domain"] in body
    assert 'href="/account/sign-in-methods"' in body
    assert identities_of(db_session, alice) == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("sam@example.com\r\n", "hidden_characters"),
        ("\tsam@example.com", "hidden_characters"),
        ("sam@exam\u00adple.com", "hidden_characters"),  # soft hyphen
        ("sam\u202e@example.com", "hidden_characters"),  # right-to-left override
        ("sam@example.com\x00", "hidden_characters"),
        ("sam@exa mple.com", "invalid"),
        ("@example.com", "invalid"),
        ("sam", "invalid"),
        ("s" * 250 + "@example.com", "too_long"),
    ],
)
def test_the_rules_for_provider_addresses(raw, reason):
    with pytest.raises(InvalidProviderEmail) as refused:
        service.provider_email(raw)
    assert refused.value.reason == reason


def test_provider_addresses_are_normalised_like_the_sign_up_form():
    assert service.provider_email("  Sam@Example.COM ") == "sam@example.com"
    assert service.provider_email("Jose\u0301@example.com") == "josé@example.com"
