"""Signed consent receipts (Kantara Consent Receipt v1.1 / ISO/IEC TS 27560 fields).

A receipt is a compact JWS signed with the portal's key: Ed25519 (``alg`` "Ed25519",
RFC 9864) or ECDSA P-256 (``ES256``), read from a PEM file. Its protected header names
the key by ``kid``, the key's RFC 7638 thumbprint. The public half is served as a JWKS at
``/.well-known/jwks.json`` (with the keys that signed earlier receipts, see
``receipt_keys``), so anyone can check a receipt offline.
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
from vrm_portal.consent.ledger import canonical_json, format_timestamp
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


#: The algorithms a receipt key may have, as named in JWS headers and the JWKS.
ALGORITHMS = ("Ed25519", "ES256")


def new_private_key_pem(algorithm: str = "Ed25519") -> bytes:
    """A new private key for ``algorithm`` (one of ``ALGORITHMS``), as PKCS#8 PEM."""
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "Ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise SigningKeyError(f"unsupported receipt key algorithm {algorithm!r}")
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_key_file(path: Path, algorithm: str = "Ed25519") -> None:
    """Write a new private key (Ed25519 by default; PKCS#8 PEM) readable only by its owner."""
    pem = new_private_key_pem(algorithm)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)


def load_key_file(path: Path) -> SigningKey:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the receipt signing key {path}: {exc}") from exc
    return signing_key_from_pem(pem, path)


def signing_key_from_pem(pem: bytes, source: Path) -> SigningKey:
    """The signing key held in ``pem`` (read from ``source``, named in errors)."""
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"cannot read the receipt signing key {source}: {exc}") from exc
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return SigningKey(OKPKey.import_key(pem), "Ed25519")
    if isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1":
        return SigningKey(ECKey.import_key(pem), "ES256")
    raise SigningKeyError(f"{source}: the receipt key must be Ed25519 or ECDSA P-256")


@dataclass(frozen=True)
class LedgerPromise:
    """What a receipt says of its ledger event, signed before the event has a place in
    the chain (like a certificate transparency SCT): the event's id, the SHA-256 of its
    content (the event document without ``seq`` and ``prev_hash``, see
    ``ledger.content_hash``) and the time by which the portal promises to integrate it."""

    event_id: str
    content_hash: bytes
    integrate_by: datetime


@dataclass(frozen=True)
class ReceiptFacts:
    """Everything a receipt states, gathered by the consent service."""

    issuer: str
    brand: Brand
    purpose: Purpose
    version: PurposeVersion
    event: LedgerPromise
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
            "eventId": facts.event.event_id,
            "contentHash": facts.event.content_hash.hex(),
            "integrateBy": format_timestamp(facts.event.integrate_by),
        },
    }
