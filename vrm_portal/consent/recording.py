"""Recording consent changes: the state, the signed receipt, and the event for the
ledger, written in the change's transaction (see CONTRIBUTING, "The write path").

``record_all`` is the one writer every change in ``service`` ends with: with a worker
sequencer it writes the intake row the sequencer integrates later; inline it places the
event at once (``sequencer.place``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, sequencer
from vrm_portal.consent.models import (
    Action,
    CollectionMethod,
    ConsentReceipt,
    ConsentState,
    ConsentStatus,
    EventIntake,
    Purpose,
    PurposeVersion,
)
from vrm_portal.consent.receipts import LedgerPromise, ReceiptFacts, SigningKey, build_receipt

_RECEIPTS = cast(Table, ConsentReceipt.__table__)
_INTAKE = cast(Table, EventIntake.__table__)


@dataclass(frozen=True)
class Notary:
    """Signs receipts: the portal's key and its public URL (the receipts' issuer)."""

    key: SigningKey
    issuer: str


@dataclass(frozen=True)
class Change:
    """How a change was made: by which path, on whose behalf, in which language, when."""

    method: CollectionMethod
    language: str
    now: datetime
    actor: str = "subject"
    #: The request carried ``Sec-GPC: 1``: an explicit grant then overrides the signal.
    gpc_signal: bool = False


@dataclass(frozen=True)
class IssuedReceipt:
    """The signed receipt of a change just recorded (stored in ``consent_receipts``)."""

    receipt_id: str
    event_id: str
    #: The event's place in the ledger, when integrated in the change's transaction.
    event_seq: int | None
    account_id: int
    jws: str


_STATUS_AFTER = {
    Action.GRANTED: ConsentStatus.GRANTED,
    Action.WITHDRAWN: ConsentStatus.WITHDRAWN,
    Action.EXPIRED: ConsentStatus.EXPIRED,
}


@dataclass(frozen=True)
class Recording:
    """One change to record: the purpose, its text, the consumer's state and pairwise id."""

    purpose: Purpose
    version: PurposeVersion
    state: ConsentState | None
    principal: str


def record_all(
    session: Session,
    notary: Notary,
    head: ledger.Head | None,
    account: Account,
    action: Action,
    change: Change,
    recordings: list[Recording],
) -> list[IssuedReceipt]:
    """Record ``action`` for each of ``recordings``, in order: the consumer's state is
    updated (seen at once by the brand API), the receipt signed and stored, and the event
    written to the sequencer's intake with what its feed entry will say, in one INSERT
    each whatever their number. ``head`` is the ledger head locked by this change when
    the app integrates inline (``sequencer.INLINE``): the events are then integrated in
    this transaction; otherwise the job engine's sequencer is nudged after the commit.
    """
    expires_at: datetime | None = None
    intake, receipt_rows, issued, states = [], [], [], []
    for recording in recordings:
        purpose, version = recording.purpose, recording.version
        if action == Action.GRANTED:
            expires_at = change.now + timedelta(days=purpose.validity_days)
        new_event = ledger.NewEvent(
            subject_key=account.subject_key,
            brand=purpose.brand.slug,
            purpose=purpose.key,
            purpose_version=version.version,
            text_hash=version.content_hash,
            action=action.value,
            method=change.method.value,
            actor=change.actor,
            language=change.language,
            occurred_at=change.now,
            expires_at=expires_at,
        )
        event_id = str(uuid.uuid4())
        content = new_event.content(event_id)
        state = recording.state
        if state is None:
            state = ConsentState(account_id=account.id, purpose_id=purpose.id)
            session.add(state)
        state.status = _STATUS_AFTER[action]
        state.version = version.version
        state.content_hash = version.content_hash
        state.granted_at = change.now if action == Action.GRANTED else None
        state.expires_at = expires_at
        state.method = change.method.value
        state.granted_despite_gpc = action == Action.GRANTED and change.gpc_signal
        state.updated_at = change.now
        if state.id is None and head is None:
            session.flush()  # the intake row names the state
        states.append(state)
        receipt_id = str(uuid.uuid4())
        facts = ReceiptFacts(
            issuer=notary.issuer,
            brand=purpose.brand,
            purpose=purpose,
            version=version,
            event=LedgerPromise(
                event_id, ledger.content_hash(content), change.now + sequencer.MAX_DELAY
            ),
            principal_id=recording.principal,
            method=change.method.value,
            action=action.value,
            language=change.language,
            occurred_at=change.now,
            expires_at=expires_at,
        )
        jws = notary.key.sign(build_receipt(facts, receipt_id))
        issued.append(IssuedReceipt(receipt_id, event_id, None, account.id, jws))
        receipt_rows.append(
            {
                "receipt_id": receipt_id,
                "event_seq": None,
                "account_id": account.id,
                "jws": jws,
                "created_at": change.now,
            }
        )
        intake.append(
            {
                "event_id": event_id,
                "content": ledger.canonical_json(content),
                "occurred_at": change.now,
                "receipt_id": receipt_id,
                "state_id": state.id,
                "brand_id": purpose.brand_id,
                "pairwise_id": recording.principal,
                "feed_data": {
                    "purpose": purpose.key,
                    "version": version.version,
                    "method": change.method.value,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
                "created_at": utcnow(),
            }
        )
    if head is None:
        session.execute(insert(_RECEIPTS), receipt_rows)
        session.execute(insert(_INTAKE), intake)
        sequencer.note_due(session)
        session.flush()
        return issued
    # Inline: the events are placed at once, without passing through the intake (the
    # states are written once, with their ``last_event_seq``, at the receipts' INSERT).
    with session.no_autoflush:
        placed = _place_inline(session, head, change, intake)
    for row, state, appended in zip(receipt_rows, states, placed, strict=True):
        row["event_seq"] = appended.seq
        state.last_event_seq = appended.seq
    session.execute(insert(_RECEIPTS), receipt_rows)
    session.flush()
    return [replace(r, event_seq=e.seq) for r, e in zip(issued, placed, strict=True)]


def _place_inline(
    session: Session, head: ledger.Head, change: Change, intake: list[dict[str, Any]]
) -> list[ledger.AppendedEvent]:
    return sequencer.place(
        session,
        head,
        [
            sequencer.Waiting(
                json.loads(row["content"]),
                change.now,
                row["brand_id"],
                row["pairwise_id"],
                row["feed_data"],
            )
            for row in intake
        ],
    )
