"""Proof bundles: one consumer's consent events with everything needed to check them
offline, in a ZIP file (``vrm proof-bundle`` for the privacy office, the "Download a proof
bundle" button for the consumer).

The bundle holds the events exactly as the ledger stores them (``events/<seq>.json``),
their signed receipts (``receipts/<seq>.jws``), the exact notice texts agreed to
(``notices/<brand>/<purpose>/v<version>.<lang>.txt``), the latest signed checkpoint
(``checkpoint.txt``) and its verifier key (``vkey.txt``), the receipt keys
(``jwks.json``), the inclusion proof of each event against that checkpoint
(``proofs/<seq>.json``), a ``manifest.json`` with the SHA-256 of every other file, two
READMEs and ``verify.py`` (``verify_bundle.py``: the standard library and
``cryptography`` only).

Events after the latest checkpoint are included, flagged ``"in_checkpoint": false`` and
without a proof: the bundle never signs a checkpoint of its own (signing is the
schedule's job, and every checkpoint goes to the brands); ``verify.py`` reports them as
PENDING and exits with status 3, and a bundle made after the next checkpoint proves them.

Memory and queries stay flat in the number of events: events are read in batches with
their receipts in one query a batch, each tree node a batch's proofs need is fetched
once, and the ZIP is written to a file as it goes; only the manifest's small per-event
entries are kept.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import IO, Any, cast

from flask import current_app
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account
from vrm_portal.accounts.service import find_account_by_email
from vrm_portal.brands.models import Brand, BrandRelationship
from vrm_portal.clock import utcnow
from vrm_portal.consent.models import ConsentEvent, ConsentReceipt, Purpose, PurposeVersion
from vrm_portal.log import merkle, tree
from vrm_portal.log.service import latest_checkpoint
from vrm_portal.log.signing import log_signer

FORMAT = "vrm-proof-bundle/1"
#: The standalone checker, shipped in every bundle as ``verify.py``.
VERIFIER_SOURCE = Path(__file__).with_name("verify_bundle.py")
READMES = {
    "README.en.txt": Path(__file__).with_name("bundle_readme.en.txt"),
    "README.fr.txt": Path(__file__).with_name("bundle_readme.fr.txt"),
}
LANGUAGES = ("en", "fr")
BATCH = 500


class SubjectNotFound(LookupError):
    """No consumer answers to the email, subject key or pairwise id given."""


@dataclass(frozen=True)
class Subject:
    """Whose bundle: the ledger's pseudonymous key (and the account, while it exists)."""

    subject_key: str
    account_id: int | None
    #: The brand whose pairwise id found the consumer, if that is how.
    via_brand: str | None = None


def find_subject(
    session: Session,
    *,
    email: str | None = None,
    subject_key: str | None = None,
    pairwise_id: str | None = None,
) -> Subject:
    """The consumer known by exactly one of ``email``, ``subject_key`` (also after an
    erasure: the ledger keeps it) or a brand's ``pairwise_id``."""
    if sum(value is not None for value in (email, subject_key, pairwise_id)) != 1:
        raise ValueError("give exactly one of email, subject_key and pairwise_id")
    if email is not None:
        account = find_account_by_email(session, email)
        if account is None:
            raise SubjectNotFound("no account has this email address")
        return Subject(account.subject_key, account.id)
    if pairwise_id is not None:
        row = session.execute(
            select(Account.subject_key, Account.id, Brand.slug)
            .join(BrandRelationship, BrandRelationship.account_id == Account.id)
            .join(Brand, Brand.id == BrandRelationship.brand_id)
            .where(BrandRelationship.pairwise_id == pairwise_id)
        ).one_or_none()
        if row is None:
            raise SubjectNotFound("no brand knows a consumer by this pairwise id")
        return Subject(row.subject_key, row.id, row.slug)
    assert subject_key is not None
    account_id = session.scalar(select(Account.id).where(Account.subject_key == subject_key))
    known = account_id is not None or session.scalar(
        select(ConsentEvent.seq).where(ConsentEvent.subject_key == subject_key).limit(1)
    )
    if not known:
        raise SubjectNotFound("no account and no consent event has this subject key")
    return Subject(subject_key, account_id)


@dataclass(frozen=True)
class Keys:
    """The public keys a bundle ships: the log's verifier key and the receipts' JWKS."""

    log_origin: str
    verifier_key: str
    jwks: dict[str, Any]


@dataclass(frozen=True)
class BundleSummary:
    subject_key: str
    events: int
    #: Events proven against the checkpoint; the others wait for the next one.
    proven: int
    pending: int
    checkpoint_size: int | None
    files: int


def current_keys() -> Keys:
    """The app's public keys for a bundle: the log's verifier key, and the receipt keys
    read through the public ``/.well-known/jwks.json`` endpoint, exactly as it serves
    them (however many keys it lists). Needs an app context."""
    with current_app.test_request_context("/.well-known/jwks.json"):
        view = current_app.view_functions["wellknown.jwks"]
        response = current_app.make_response(cast(ResponseReturnValue, view()))
    jwks: dict[str, Any] = json.loads(response.get_data())
    signer = log_signer()
    return Keys(log_origin=signer.origin, verifier_key=signer.verifier_key, jwks=jwks)


def build_bundle(
    session: Session,
    *,
    subject_key: str,
    brand: str | None = None,
    purpose: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """The bundle as bytes, with the app's keys (in an app context): for a consumer's
    few events; ``write_bundle`` to a file for anything large."""
    out = io.BytesIO()
    write_bundle(
        session,
        out,
        subject_key=subject_key,
        keys=current_keys(),
        portal=str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/"),
        now=now or utcnow(),
        brand=brand,
        purpose=purpose,
    )
    return out.getvalue()


def _dump(document: Any) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def notice_text(title: str, text: str) -> str:
    """A notice file: its title, a blank line, its text exactly, a final newline."""
    return f"{title}\n\n{text}\n"


def inclusion_proofs(
    store: tree.NodeStore, indices: Sequence[int], size: int
) -> dict[int, list[bytes]]:
    """The audit paths of ``indices`` in the tree of ``size`` leaves: the nodes they
    need are found first, then each is fetched once for the whole batch (the upper
    nodes are shared between proofs)."""
    ranges: list[tuple[int, int]] = []

    def record(start: int, end: int) -> bytes:
        ranges.append((start, end))
        return b""

    for index in indices:
        merkle.inclusion_proof(index, size, record)
    store.fetch(tree.needed_nodes(ranges))
    return {index: merkle.inclusion_proof(index, size, store.subtree) for index in indices}


class _Writer:
    """Files into the ZIP, each one's SHA-256 noted for the manifest."""

    def __init__(self, out: IO[bytes], moment: datetime) -> None:
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.date_time = moment.timetuple()[:6]
        self.hashes: dict[str, str] = {}

    def add(self, name: str, data: bytes, *, executable: bool = False, listed: bool = True) -> None:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (0o755 if executable else 0o644) << 16
        self.zip.writestr(info, data)
        if listed:
            self.hashes[name] = hashlib.sha256(data).hexdigest()

    def close(self) -> None:
        self.zip.close()


def write_bundle(
    session: Session,
    out: IO[bytes],
    *,
    subject_key: str,
    keys: Keys,
    portal: str,
    now: datetime,
    brand: str | None = None,
    purpose: str | None = None,
    batch: int = BATCH,
) -> BundleSummary:
    """Write the proof bundle of ``subject_key``'s events (of ``brand`` and/or
    ``purpose`` only, when given) to ``out`` as a ZIP file. Reads only."""
    generated_at = _timestamp(now)
    checkpoint = latest_checkpoint(session)
    size = int(checkpoint.size) if checkpoint is not None else 0
    writer = _Writer(out, now)
    try:
        writer.add("vkey.txt", f"{keys.verifier_key}\n".encode())
        writer.add("jwks.json", _dump(keys.jwks))
        if checkpoint is not None:
            writer.add("checkpoint.txt", checkpoint.note.encode())
        query = (
            select(ConsentEvent.seq, ConsentEvent.event_id, ConsentEvent.body, ConsentEvent.hash)
            .where(ConsentEvent.subject_key == subject_key)
            .order_by(ConsentEvent.seq)
        )
        if brand is not None:
            query = query.where(ConsentEvent.brand_slug == brand)
        if purpose is not None:
            query = query.where(ConsentEvent.purpose_key == purpose)
        entries = _add_events(writer, session, query, size, batch)
        notices = {(e["brand"], e["purpose"], e["purpose_version"]) for e in entries}
        notice_entries = _add_notices(writer, session, sorted(notices))
        pending = sum(1 for entry in entries if not entry["in_checkpoint"])
        facts = {
            "generated_at": generated_at,
            "portal": portal,
            "subject_key": subject_key,
            "brand": brand or "*",
            "purpose": purpose or "*",
            "events": str(len(entries)),
            "pending": str(pending),
            "size": str(size),
            "origin": keys.log_origin,
        }
        for name, path in READMES.items():
            text = Template(path.read_text(encoding="utf-8")).substitute(facts)
            writer.add(name, text.encode())
        writer.add("verify.py", VERIFIER_SOURCE.read_bytes(), executable=True)
        manifest = {
            "format": FORMAT,
            "generated_at": generated_at,
            "log_origin": keys.log_origin,
            "subject_key": subject_key,
            "filter": {"brand": brand, "purpose": purpose},
            "checkpoint": (
                {"file": "checkpoint.txt", "size": size, "root": _b64(bytes(checkpoint.root))}
                if checkpoint is not None
                else None
            ),
            "events": entries,
            "notices": notice_entries,
            "files": dict(sorted(writer.hashes.items())),
        }
        writer.add("manifest.json", _dump(manifest), listed=False)
    finally:
        writer.close()
    return BundleSummary(
        subject_key=subject_key,
        events=len(entries),
        proven=len(entries) - pending,
        pending=pending,
        checkpoint_size=size if checkpoint is not None else None,
        files=len(writer.hashes) + 1,
    )


def _add_events(
    writer: _Writer, session: Session, query: Select[int, str, str, bytes], size: int, batch: int
) -> list[dict[str, Any]]:
    """The events in batches: each batch's receipts in one query, its proofs' tree nodes
    in a few; returns the manifest's entries."""
    store = tree.NodeStore(session)
    entries: list[dict[str, Any]] = []
    for rows in session.execute(query.execution_options(yield_per=batch)).partitions():
        seqs = [int(row.seq) for row in rows]
        receipts = {
            int(event_seq): jws
            for event_seq, jws in session.execute(
                select(ConsentReceipt.event_seq, ConsentReceipt.jws).where(
                    ConsentReceipt.event_seq.in_(seqs)
                )
            )
            if event_seq is not None
        }
        proven = [seq - 1 for seq in seqs if seq <= size]
        store.cache.clear()
        proofs = inclusion_proofs(store, proven, size) if proven else {}
        for row in rows:
            digest = bytes(row.hash)
            entries.append(
                _add_event(writer, row.seq, row.event_id, row.body, digest, size, receipts, proofs)
            )
    return entries


def _add_event(
    writer: _Writer,
    seq: int,
    event_id: str,
    body: str,
    digest: bytes,
    size: int,
    receipts: dict[int, str],
    proofs: dict[int, list[bytes]],
) -> dict[str, Any]:
    document = json.loads(body)
    writer.add(f"events/{seq}.json", body.encode())
    receipt = receipts.get(seq)
    if receipt is not None:
        writer.add(f"receipts/{seq}.jws", receipt.encode())
    proof = proofs.get(seq - 1)
    if proof is not None:
        writer.add(
            f"proofs/{seq}.json",
            _dump(
                {
                    "seq": seq,
                    "index": seq - 1,
                    "size": size,
                    "event_hash": digest.hex(),
                    "hashes": [_b64(h) for h in proof],
                }
            ),
        )
    return {
        "seq": seq,
        "event_id": event_id,
        "hash": digest.hex(),
        "brand": document["brand"],
        "purpose": document["purpose"],
        "purpose_version": document["purpose_version"],
        "action": document["action"],
        "occurred_at": document["occurred_at"],
        "in_checkpoint": proof is not None,
        "body": f"events/{seq}.json",
        "receipt": f"receipts/{seq}.jws" if receipt is not None else None,
        "proof": f"proofs/{seq}.json" if proof is not None else None,
    }


def _add_notices(
    writer: _Writer, session: Session, keys: Iterable[tuple[str, str, int]]
) -> list[dict[str, Any]]:
    wanted = list(keys)
    if not wanted:
        return []
    rows = session.execute(
        select(Brand.slug, Purpose.key, PurposeVersion)
        .join(Purpose, Purpose.brand_id == Brand.id)
        .join(PurposeVersion, PurposeVersion.purpose_id == Purpose.id)
        .where(tuple_(Brand.slug, Purpose.key, PurposeVersion.version).in_(wanted))
        .order_by(Brand.slug, Purpose.key, PurposeVersion.version)
    )
    entries = []
    for brand_slug, purpose_key, version in rows:
        folder = f"notices/{brand_slug}/{purpose_key}/v{version.version}"
        texts = {}
        for lang in LANGUAGES:
            name = f"{folder}.{lang}.txt"
            writer.add(name, notice_text(version.title(lang), version.text(lang)).encode())
            texts[lang] = name
        entries.append(
            {
                "brand": brand_slug,
                "purpose": purpose_key,
                "version": version.version,
                "content_hash": version.content_hash,
                "title_en": version.title_en,
                "title_fr": version.title_fr,
                "texts": texts,
            }
        )
    return entries
