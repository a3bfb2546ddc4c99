"""The receipt page: every field in plain words, the signature checked against the
published JWKS, own receipts only, linked from the history and the brand page."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from tests.conftest import sign_in
from tests.consent.conftest import purpose_of
from vrm_portal.brands.models import Brand
from vrm_portal.brands.service import relationship_with
from vrm_portal.consent import service
from vrm_portal.consent.models import ConsentReceipt
from vrm_portal.consent.receipt_reader import Verdict, verify_receipt
from vrm_portal.consent.receipts import new_private_key_pem, signing_key_from_pem
from vrm_portal.consent.signing import receipt_jwks

PAGE_LINK = re.compile(r'href="/consents/receipts/([0-9a-f-]{36})"')


def _grant(db_session, notary, change, account, brand="maison-berlingot", key="sms-offers"):
    purpose = purpose_of(db_session, brand, key)
    result = service.grant(db_session, notary, account, purpose, shown_version=1, change=change())
    db_session.commit()
    assert result.receipt is not None
    return result.receipt


def test_the_receipt_page_says_every_field_and_that_the_signature_verifies(
    client, alice, db_session, notary, change
):
    receipt = _grant(db_session, notary, change, alice)
    brand = db_session.scalar(select(Brand).where(Brand.slug == "maison-berlingot"))
    pairwise = relationship_with(db_session, alice.id, brand).pairwise_id
    version = service.version_of(
        db_session, purpose_of(db_session, "maison-berlingot", "sms-offers")
    )

    page = client.get(f"/consents/receipts/{receipt.receipt_id}")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-verdict="valid"' in html
    assert pairwise in html
    assert brand.name in html
    assert brand.controller_name in html
    assert version.title_en in html
    assert version.text_en in html
    assert version.content_hash in html
    assert 'data-matches="yes"' in html
    assert "You gave this consent" in html
    assert "On this portal" in html
    assert "or until you withdraw it" in html
    assert f'href="/consents/receipts/{receipt.receipt_id}.jwt"' in html


def test_another_persons_receipt_page_is_not_found(
    client, alice, make_account, new_browser, db_session, notary, change
):
    receipt = _grant(db_session, notary, change, alice)
    make_account("bob@example.com")
    bob = new_browser()
    sign_in(bob, "bob@example.com")

    assert bob.get(f"/consents/receipts/{receipt.receipt_id}").status_code == 404
    assert bob.get(f"/consents/receipts/{receipt.receipt_id}.jwt").status_code == 404
    assert bob.get("/consents/receipts/00000000-0000-4000-8000-000000000000").status_code == 404


def test_history_rows_and_the_brand_page_link_the_receipt_page(
    client, alice, db_session, notary, change
):
    receipt = _grant(db_session, notary, change, alice)

    history = client.get("/consents/history").get_data(as_text=True)
    brand = client.get("/consents/maison-berlingot").get_data(as_text=True)

    assert PAGE_LINK.findall(history) == [receipt.receipt_id]
    assert PAGE_LINK.findall(brand) == [receipt.receipt_id]


def test_a_tampered_receipt_or_an_unpublished_key_does_not_verify(
    app, db_session, alice, notary, change
):
    receipt = _grant(db_session, notary, change, alice)
    with app.app_context():
        jwks = receipt_jwks()
    header, payload, signature = receipt.jws.split(".")
    stranger = signing_key_from_pem(new_private_key_pem(), Path("stranger.pem"))

    assert verify_receipt(receipt.jws, jwks)[0] is Verdict.VALID
    forged = f"{header}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"
    assert verify_receipt(forged, jwks)[0] is Verdict.INVALID
    assert verify_receipt(stranger.sign({"a": 1}), jwks)[0] is Verdict.UNKNOWN_KEY
    assert verify_receipt("not a jws", jwks) == (Verdict.INVALID, None)
    stored = db_session.scalar(
        select(ConsentReceipt).where(ConsentReceipt.receipt_id == receipt.receipt_id)
    )
    assert stored is not None
    assert stored.account_id == alice.id
