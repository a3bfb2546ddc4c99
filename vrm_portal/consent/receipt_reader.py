"""A consent receipt read back for its owner: what it says, field by field, and whether
its signature verifies against the published keys (the JWKS of ``/.well-known/jwks.json``).

The signed file stays the proof; this is how a person reads it without tools.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from joserfc import jws
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, KeySetSerialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.brands.models import Brand
from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentEvent, EventIntake, Purpose, PurposeVersion
from vrm_portal.consent.queries import receipt_of

#: The algorithms receipt keys may have (see ``receipts``): nothing else is accepted.
_ALGORITHMS = ("Ed25519", "ES256")


class Verdict(enum.StrEnum):
    #: Signed by one of the published keys, and unchanged since.
    VALID = "valid"
    #: Signed with a key that is not published (any more): it cannot be checked.
    UNKNOWN_KEY = "unknown-key"
    #: The signature does not match the content, or the file is not a signed receipt.
    INVALID = "invalid"


@dataclass(frozen=True)
class Controller:
    name: str
    address: str
    email: str
    policy_url: str


@dataclass(frozen=True)
class ReadReceipt:
    """Every field of one receipt, and what checking it found."""

    receipt_id: str
    verdict: Verdict
    key_id: str | None
    algorithm: str | None
    issuer: str
    #: The consumer's pairwise id for this brand: how the brand knows them.
    principal_id: str
    brand_name: str
    #: The brand, when it is still listed on the portal.
    brand: Brand | None
    controller: Controller
    purpose_key: str
    purpose_title: str
    purpose_version: int
    #: The exact text the receipt refers to, as published (None if it cannot be found).
    text: PurposeVersion | None
    #: The SHA-256 of the text that the receipt states.
    notice_hash: str
    #: The published text's hash is the one the receipt states.
    text_matches: bool
    action: str
    method: str
    language: str
    jurisdiction: str
    legal_basis: str
    occurred_at: datetime
    expires_at: datetime | None
    third_party_disclosure: bool
    data_categories: list[str]
    #: The event's place in the ledger and its hash; None until the sequencer integrated
    #: it (the receipt then only promises it, by ``integrate_by``).
    ledger_seq: int | None
    ledger_hash: str | None
    integrate_by: datetime | None
    #: The signed file's content (the JWS payload), as stored.
    document: dict[str, Any]


def verify_receipt(token: str, jwks: dict[str, Any]) -> tuple[Verdict, dict[str, Any] | None]:
    """Check ``token`` (a compact JWS) against the public keys in ``jwks``.

    Returns the verdict and the payload: verified when ``VALID``, otherwise as it reads
    without any check (None when it cannot even be read).
    """
    try:
        signed = jws.deserialize_compact(
            token,
            KeySet.import_key_set(cast(KeySetSerialization, jwks)),
            algorithms=list(_ALGORITHMS),
        )
        return Verdict.VALID, _json(signed.payload)
    except InvalidKeyIdError:
        verdict = Verdict.UNKNOWN_KEY
    except (BadSignatureError, JoseError, ValueError):
        verdict = Verdict.INVALID
    try:
        return verdict, _json(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError):
        return Verdict.INVALID, None


def _json(payload: bytes) -> dict[str, Any]:
    document = json.loads(payload)
    if not isinstance(document, dict):
        raise ValueError("a receipt is a JSON object")
    return document


def read_receipt(
    session: Session, account: Account, receipt_id: str, jwks: dict[str, Any]
) -> ReadReceipt | None:
    """The consumer's own receipt ``receipt_id``, read and checked; None when it is not
    theirs (or does not exist)."""
    stored = receipt_of(session, account, receipt_id)
    if stored is None:
        return None
    verdict, document = verify_receipt(stored.jws, jwks)
    header = _header(stored.jws)
    doc = document or {}
    controllers = doc.get("piiControllers") or [{}]
    controller = controllers[0] if isinstance(controllers[0], dict) else {}
    service = (doc.get("services") or [{}])[0]
    purpose_doc = (service.get("purposes") or [{}])[0]
    event = session.get(ConsentEvent, stored.event_seq) if stored.event_seq else None
    brand_slug = event.brand_slug if event is not None else _waiting_brand(session, doc)
    brand = session.scalar(select(Brand).where(Brand.slug == brand_slug)) if brand_slug else None
    purpose_key = str(doc.get("purposeKey") or (event.purpose_key if event else ""))
    version_number = int(doc.get("purposeVersion") or 0)
    text = _text(session, brand, purpose_key, version_number)
    notice_hash = str(doc.get("noticeHash") or "")
    ledger_doc = doc.get("ledgerEvent") or {}
    return ReadReceipt(
        receipt_id=stored.receipt_id,
        verdict=verdict,
        key_id=header.get("kid"),
        algorithm=header.get("alg"),
        issuer=str(doc.get("iss") or ""),
        principal_id=str(doc.get("piiPrincipalId") or ""),
        brand_name=str(service.get("service") or (brand.name if brand else "")),
        brand=brand,
        controller=Controller(
            name=str(controller.get("piiController") or ""),
            address=str(controller.get("address") or ""),
            email=str(controller.get("email") or ""),
            policy_url=str(controller.get("piiControllerUrl") or doc.get("policyUrl") or ""),
        ),
        purpose_key=purpose_key,
        purpose_title=str(purpose_doc.get("purpose") or purpose_key),
        purpose_version=version_number,
        text=text,
        notice_hash=notice_hash,
        text_matches=text is not None and text.content_hash == notice_hash,
        action=str(doc.get("consentStatus") or ""),
        method=str(doc.get("collectionMethod") or ""),
        language=str(doc.get("language") or "en"),
        jurisdiction=str(doc.get("jurisdiction") or ""),
        legal_basis=str(doc.get("legalBasis") or ""),
        occurred_at=datetime.fromtimestamp(int(doc.get("consentTimestamp") or 0), UTC),
        expires_at=ledger.parse_timestamp(doc["expiresAt"]) if doc.get("expiresAt") else None,
        third_party_disclosure=bool(purpose_doc.get("thirdPartyDisclosure")),
        data_categories=[str(c) for c in purpose_doc.get("piiCategory") or []],
        ledger_seq=event.seq if event is not None else None,
        ledger_hash=event.hash.hex() if event is not None else None,
        integrate_by=_timestamp(ledger_doc.get("integrateBy")),
        document=doc,
    )


def _waiting_brand(session: Session, doc: dict[str, Any]) -> str | None:
    """The brand of an event still waiting for the sequencer (from its intake row)."""
    event_id = (doc.get("ledgerEvent") or {}).get("eventId")
    if not isinstance(event_id, str):
        return None
    content = session.scalar(select(EventIntake.content).where(EventIntake.event_id == event_id))
    brand = json.loads(content).get("brand") if content else None
    return brand if isinstance(brand, str) else None


def _timestamp(value: Any) -> datetime | None:
    try:
        return ledger.parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _header(token: str) -> dict[str, str]:
    try:
        headers = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError):
        return {}
    return {str(k): str(v) for k, v in headers.items()}


def _text(
    session: Session, brand: Brand | None, purpose_key: str, version: int
) -> PurposeVersion | None:
    if brand is None or not purpose_key or version < 1:
        return None
    return session.scalar(
        select(PurposeVersion)
        .join(Purpose, Purpose.id == PurposeVersion.purpose_id)
        .where(
            Purpose.brand_id == brand.id,
            Purpose.key == purpose_key,
            PurposeVersion.version == version,
        )
    )
