"""Signed consent receipts (Kantara Consent Receipt v1.1 / ISO/IEC TS 27560 fields).

A receipt is a compact JWS signed with the portal's key: Ed25519 (``alg`` "Ed25519",
RFC 9864) or ECDSA P-256 (``ES256``), read from a PEM file. The public half is served
as a JWKS at ``/.well-known/jwks.json``, so anyone can check a receipt offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey

from vrm_portal.brands.models import Brand
from vrm_portal.consent.ledger import AppendedEvent, canonical_json, format_timestamp
from vrm_portal.consent.models import Purpose, PurposeCategory, PurposeVersion

RECEIPT_VERSION = "KI-CR-v1.1.0"
MEDIA_TYPE = "application/jose"

PII_CATEGORIES: dict[str, list[str]] = {
    PurposeCategory.EMAIL_MARKETING: ["contact.email"],
    PurposeCategory.SMS_MARKETING: ["contact.phone"],
    PurposeCategory.POSTAL_MARKETING: ["contact.postal-address"],
    PurposeCategory.PERSONALISATION: ["preferences.interests", "preferences.intents"],
    PurposeCategory.PARTNER_SHARING: ["profile", "preferences.interests"],
    PurposeCategory.ANALYTICS: ["usage"],
}


class SigningKeyError(RuntimeError):
    """The receipt signing key is missing or of an unsupported kind."""


@dataclass(frozen=True)
class SigningKey:
    key: OKPKey | ECKey
    algorithm: str

    @property
    def kid(self) -> str:
        return self.key.thumbprint()

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = dict(self.key.as_dict(private=False))
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return jwk

    def sign(self, payload: dict[str, Any]) -> str:
        header = {"alg": self.algorithm, "kid": self.kid, "typ": "JWT"}
        data = canonical_json(payload).encode()
        return jws.serialize_compact(header, data, self.key, algorithms=[self.algorithm])


def generate_key_file(path: Path) -> None:
    """Write a new Ed25519 private key (PKCS#8 PEM) readable only by its owner."""
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)


def load_key_file(path: Path) -> SigningKey:
    try:
        pem = path.read_bytes()
        private = serialization.load_pem_private_key(pem, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"cannot read the receipt signing key {path}: {exc}") from exc
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return SigningKey(OKPKey.import_key(pem), "Ed25519")
    if isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1":
        return SigningKey(ECKey.import_key(pem), "ES256")
    raise SigningKeyError(f"{path}: the receipt key must be Ed25519 or ECDSA P-256")


@dataclass(frozen=True)
class ReceiptFacts:
    """Everything a receipt states, gathered by the consent service."""

    issuer: str
    brand: Brand
    purpose: Purpose
    version: PurposeVersion
    event: AppendedEvent
    principal_id: str
    method: str
    action: str
    language: str
    occurred_at: datetime
    expires_at: datetime | None


def build_receipt(facts: ReceiptFacts, receipt_id: str) -> dict[str, Any]:
    """The receipt document (the JWS payload)."""
    brand, purpose, version = facts.brand, facts.purpose, facts.version
    timestamp = int(facts.occurred_at.timestamp())
    termination = (
        f"Until {format_timestamp(facts.expires_at)} or until withdrawn"
        if facts.expires_at
        else "Ended by this event"
    )
    return {
        "iss": facts.issuer,
        "iat": timestamp,
        "jti": receipt_id,
        "version": RECEIPT_VERSION,
        "jurisdiction": brand.jurisdiction,
        "consentTimestamp": timestamp,
        "collectionMethod": facts.method,
        "consentReceiptID": receipt_id,
        "language": facts.language,
        "piiPrincipalId": facts.principal_id,
        "piiControllers": [
            {
                "piiController": brand.controller_name,
                "onBehalf": False,
                "contact": brand.controller_email,
                "address": brand.controller_address,
                "email": brand.controller_email,
                "piiControllerUrl": brand.policy_url,
            }
        ],
        "policyUrl": brand.policy_url,
        "services": [
            {
                "service": brand.name,
                "purposes": [
                    {
                        "purpose": version.title(facts.language),
                        "purposeCategory": [purpose.category],
                        "consentType": "EXPLICIT",
                        "piiCategory": PII_CATEGORIES.get(purpose.category, []),
                        "primaryPurpose": False,
                        "termination": termination,
                        "thirdPartyDisclosure": purpose.shares_with_third_parties,
                    }
                ],
            }
        ],
        "sensitive": False,
        "spiCat": [],
        # ISO/IEC TS 27560 record fields that Kantara v1.1 does not name.
        "consentStatus": facts.action,
        "legalBasis": purpose.legal_basis,
        "purposeKey": purpose.key,
        "purposeVersion": version.version,
        "noticeHash": version.content_hash,
        "expiresAt": format_timestamp(facts.expires_at) if facts.expires_at else None,
        "ledgerEvent": {
            "seq": facts.event.seq,
            "eventId": facts.event.event_id,
            "hash": facts.event.hash.hex(),
        },
    }
