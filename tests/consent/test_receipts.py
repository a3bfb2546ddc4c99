"""Consent receipts: signed compact JWS anyone can check offline with the public JWKS."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select

from tests.conftest import sign_in
from tests.consent.conftest import events_of, purpose_of
from vrm_portal.brands.models import Brand, BrandRelationship
from vrm_portal.consent import ledger, sequencer, service
from vrm_portal.consent.signing import signing_key

KANTARA_FIELDS = {
    "version",
    "jurisdiction",
    "consentTimestamp",
    "collectionMethod",
    "consentReceiptID",
    "language",
    "piiPrincipalId",
    "piiControllers",
    "policyUrl",
    "services",
    "sensitive",
    "spiCat",
}


def public_keys(client) -> KeySet:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return KeySet.import_key_set(response.get_json())


def download(client, receipt_id: str) -> str:
    response = client.get(f"/consents/receipts/{receipt_id}.jwt")
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/jose"
    assert "attachment" in response.headers["Content-Disposition"]
    assert f"{receipt_id}.jwt" in response.headers["Content-Disposition"]
    return response.get_data(as_text=True)


def verified_payload(token: str, keys: KeySet) -> dict:
    verified = jws.deserialize_compact(token, keys, algorithms=["Ed25519"])
    payload: dict = json.loads(verified.payload)
    return payload


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def granted(db_session, alice, notary, change):
    """Alice gives Maison Berlingot sms-offers and Aurore partner-sharing, then withdraws
    the first; returns the three receipts in order."""
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    sharing = purpose_of(db_session, "aurore-automobiles", "partner-sharing")
    receipts = [
        service.grant(db_session, notary, alice, sms, shown_version=1, change=change()).receipt,
        service.grant(
            db_session, notary, alice, sharing, shown_version=1, change=change(language="fr")
        ).receipt,
        service.withdraw(db_session, notary, alice, sms, change=change()).receipt,
    ]
    db_session.commit()
    return receipts


def test_a_downloaded_receipt_verifies_with_the_public_jwks_alone(client, granted, alice):
    keys = public_keys(client)
    token = download(client, granted[0].receipt_id)
    assert token.count(".") == 2
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "Ed25519"
    assert header["kid"] in {key.kid for key in keys.keys}
    payload = verified_payload(token, keys)
    assert set(payload) >= KANTARA_FIELDS
    assert payload["consentReceiptID"] == granted[0].receipt_id
    assert payload["version"] == "KI-CR-v1.1.0"
    assert payload["jurisdiction"] == "FR"
    assert payload["collectionMethod"] == "portal"
    assert payload["language"] == "en"
    assert isinstance(payload["consentTimestamp"], int)
    assert payload["sensitive"] is False
    assert payload["spiCat"] == []
    [controller] = payload["piiControllers"]
    assert controller["piiController"]
    assert controller["piiControllerUrl"] == payload["policyUrl"]
    [service_] = payload["services"]
    assert service_["service"] == "Maison Berlingot"
    [purpose] = service_["purposes"]
    assert purpose["purpose"] == "Offers by text message"
    assert purpose["purposeCategory"] == ["sms-marketing"]
    assert purpose["thirdPartyDisclosure"] is False
    assert payload["consentStatus"] == "granted"


def test_the_receipt_points_at_its_ledger_event(client, db_session, granted, alice):
    keys = public_keys(client)
    events = events_of(db_session, alice)
    for receipt, event in zip(granted, events, strict=True):
        payload = verified_payload(download(client, receipt.receipt_id), keys)
        # Signed before the event had its place: its id and the hash of its content
        # (the event without seq and prev_hash), with the promised integration time.
        assert payload["ledgerEvent"] == {
            "eventId": event.event_id,
            "contentHash": ledger.content_hash_of_body(event.body).hex(),
            "integrateBy": ledger.format_timestamp(event.occurred_at + sequencer.MAX_DELAY),
        }
        assert receipt.event_seq == event.seq
        assert payload["consentStatus"] == event.action
        assert payload["noticeHash"] == ledger.document_of(event)["text_hash"]


def test_the_principal_is_the_pairwise_id_of_each_brand(client, db_session, granted, alice):
    keys = public_keys(client)
    maison = verified_payload(download(client, granted[0].receipt_id), keys)
    aurore = verified_payload(download(client, granted[1].receipt_id), keys)
    withdrawn = verified_payload(download(client, granted[2].receipt_id), keys)
    pairwise = {
        slug: pairwise_id
        for slug, pairwise_id in db_session.execute(
            select(Brand.slug, BrandRelationship.pairwise_id)
            .join(Brand, Brand.id == BrandRelationship.brand_id)
            .where(BrandRelationship.account_id == alice.id)
        )
    }
    assert maison["piiPrincipalId"] == pairwise["maison-berlingot"]
    assert aurore["piiPrincipalId"] == pairwise["aurore-automobiles"]
    assert withdrawn["piiPrincipalId"] == maison["piiPrincipalId"]
    assert maison["piiPrincipalId"] != aurore["piiPrincipalId"]
    for payload in (maison, aurore):
        text = json.dumps(payload)
        assert alice.subject_key not in text
        assert alice.email not in text
        assert "alice" not in text
    # The French change is described in French, and the sharing purpose says so.
    assert aurore["language"] == "fr"
    assert aurore["services"][0]["purposes"][0]["thirdPartyDisclosure"] is True
    assert aurore["services"][0]["purposes"][0]["purpose"] != "Sharing with partner companies"


def test_another_consumers_pairwise_id_differs(
    db_session, client, new_browser, make_account, granted, notary, change
):
    bob = make_account("bob@example.com")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    receipt = service.grant(db_session, notary, bob, sms, shown_version=1, change=change()).receipt
    db_session.commit()
    browser = new_browser()
    sign_in(browser, "bob@example.com")
    keys = public_keys(browser)
    bobs = verified_payload(download(browser, receipt.receipt_id), keys)
    alices = verified_payload(download(client, granted[0].receipt_id), keys)
    assert bobs["piiPrincipalId"] != alices["piiPrincipalId"]


def test_a_modified_receipt_fails_verification(client, granted):
    keys = public_keys(client)
    token = download(client, granted[0].receipt_id)
    header, payload, signature = token.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=="))
    document["consentStatus"] = "withdrawn"
    forged = ".".join([header, b64url(json.dumps(document).encode()), signature])
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(forged, keys, algorithms=["Ed25519"])
    # Another receipt's signature does not fit either.
    other = download(client, granted[1].receipt_id).split(".")[2]
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(".".join([header, payload, other]), keys, algorithms=["Ed25519"])
    # And only the algorithm the JWKS names is accepted.
    with pytest.raises(JoseError):
        jws.deserialize_compact(token, keys, algorithms=["HS256"])


def test_another_consumers_receipt_is_not_found(
    db_session, client, new_browser, make_account, granted
):
    make_account("bob@example.com")
    bob = new_browser()
    sign_in(bob, "bob@example.com")
    assert bob.get(f"/consents/receipts/{granted[0].receipt_id}.jwt").status_code == 404
    assert (
        client.get("/consents/receipts/00000000-0000-0000-0000-000000000000.jwt").status_code == 404
    )
    # Signed out: the sign-in page, never the receipt.
    response = new_browser().get(f"/consents/receipts/{granted[0].receipt_id}.jwt")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_the_jwks_is_public_cacheable_and_holds_no_private_key(new_browser, app):
    response = new_browser().get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    cache = response.headers["Cache-Control"]
    assert "public" in cache
    assert "max-age=" in cache
    assert int(cache.split("max-age=")[1].split(",")[0]) > 0
    jwks = response.get_json()
    # The current key first; retired ones (none in this suite) after it.
    key = jwks["keys"][0]
    with app.app_context():
        assert key["kid"] == signing_key().kid
    assert key["kty"] == "OKP"
    assert key["crv"] == "Ed25519"
    assert key["alg"] == "Ed25519"
    assert key["use"] == "sig"
    assert all(not {"d", "p", "q"} & set(each) for each in jwks["keys"])
    KeySet.import_key_set(jwks)
