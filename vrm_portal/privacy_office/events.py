"""One consent event as the privacy office proves it: the hashed document, its place in
the chain, the signed receipt, and the exact text that was agreed to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrm_portal.brands.models import Brand
from vrm_portal.consent import ledger
from vrm_portal.consent.models import ConsentEvent, ConsentReceipt, Purpose, PurposeVersion
from vrm_portal.consent.receipt_reader import Verdict, verify_receipt

#: Events checked on each side of the one shown.
NEIGHBOURHOOD = 5


@dataclass(frozen=True)
class ChainCheck:
    """Whether the events around this one link up: ``first..last`` checked."""

    first: int
    last: int
    ok: bool
    problem: str | None = None
    bad_seq: int | None = None


@dataclass(frozen=True)
class EventProof:
    event: ConsentEvent
    document: dict[str, Any]
    prev_hash: str
    receipt_jws: str | None
    receipt_verdict: Verdict | None
    receipt: dict[str, Any] | None
    text: PurposeVersion | None
    text_matches: bool
    chain: ChainCheck


def check_around(session: Session, seq: int, *, width: int = NEIGHBOURHOOD) -> ChainCheck:
    """Recompute hashes and links for the events ``seq - width .. seq + width``."""
    first = max(1, seq - width)
    events = list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.seq >= first - 1, ConsentEvent.seq <= seq + width)
            .order_by(ConsentEvent.seq)
        )
    )
    previous: bytes | None = ledger.GENESIS_HASH if first == 1 else None
    last = first
    for event in events:
        stored = bytes(event.hash)
        if event.seq < first:
            previous = stored
            continue
        document = ledger.document_of(event)
        if hashlib.sha256(event.body.encode()).digest() != stored:
            return ChainCheck(first, event.seq, False, "hash", event.seq)
        if document.get("seq") != event.seq or document.get("subject") != event.subject_key:
            return ChainCheck(first, event.seq, False, "columns", event.seq)
        if previous is not None and document.get("prev_hash") != previous.hex():
            return ChainCheck(first, event.seq, False, "link", event.seq)
        previous = stored
        last = event.seq
    return ChainCheck(first, last, True)


def _text(
    session: Session, brand_slug: str, purpose_key: str, version: Any
) -> PurposeVersion | None:
    if not isinstance(version, int):
        return None
    return session.scalar(
        select(PurposeVersion)
        .join(Purpose, Purpose.id == PurposeVersion.purpose_id)
        .join(Brand, Brand.id == Purpose.brand_id)
        .where(
            Brand.slug == brand_slug,
            Purpose.key == purpose_key,
            PurposeVersion.version == version,
        )
    )


def event_proof(session: Session, seq: int, jwks: dict[str, Any]) -> EventProof | None:
    """Everything the event page shows; None when there is no event ``seq``."""
    event = session.get(ConsentEvent, seq)
    if event is None:
        return None
    document = ledger.document_of(event)
    receipt_jws = session.scalar(select(ConsentReceipt.jws).where(ConsentReceipt.event_seq == seq))
    verdict: Verdict | None = None
    receipt: dict[str, Any] | None = None
    if receipt_jws is not None:
        verdict, receipt = verify_receipt(receipt_jws, jwks)
    text = _text(session, event.brand_slug, event.purpose_key, document.get("purpose_version"))
    return EventProof(
        event=event,
        document=document,
        prev_hash=str(document.get("prev_hash", "")),
        receipt_jws=receipt_jws,
        receipt_verdict=verdict,
        receipt=receipt,
        text=text,
        text_matches=text is not None and text.content_hash == document.get("text_hash"),
        chain=check_around(session, seq),
    )
