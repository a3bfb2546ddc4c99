#!/usr/bin/env python3
"""Check a VRM Portal proof bundle, offline: ``python3 verify.py`` in the bundle's folder.

Needs Python 3 and the ``cryptography`` package, nothing else; it does not talk to the
portal. Every check prints one line, ``OK ...`` or ``FAIL ...`` (``PENDING ...`` for an
event that no signed checkpoint covers yet, ``NOTE ...`` for information), and the exit
status says the outcome:

- 0: every check passed, and every event is proven to be in the public log;
- 1: at least one check failed: do not trust the bundle;
- 2: the bundle could not be read at all (no manifest.json, wrong arguments);
- 3: every check passed, but some events are not in a signed checkpoint yet: ask for a
  new bundle after the next checkpoint to prove them in the log too.

What is checked, file by file (the formats are in the portal's docs/consent-log.md):

- ``manifest.json``: the SHA-256 of every file it lists; that every event, receipt,
  proof and notice it names is there; that each event belongs to its subject key and to
  its brand/purpose filter.
- ``vkey.txt`` and ``checkpoint.txt``: the checkpoint is a C2SP signed note with a
  valid Ed25519 signature by the verifier key (key ID = the first 4 bytes of
  SHA-256(key name || 0x0A || 0x01 || public key)).
- ``events/<seq>.json``: the body hashes (SHA-256) to the event's hash; its seq, id,
  subject, brand and purpose agree with the manifest; when the event before it is in
  the bundle too, ``prev_hash`` is that event's hash.
- ``proofs/<seq>.json``: the inclusion proof leads from SHA-256(0x00 || event hash) to
  the checkpoint's root hash (RFC 9162 section 2.1.3.2).
- ``receipts/<seq>.jws``: the compact JWS signature verifies with a key of
  ``jwks.json`` (Ed25519 or ES256), and the receipt names this event (seq, event id,
  event hash) and the same notice, purpose, version and action.
- ``notices/<brand>/<purpose>/v<version>.<lang>.txt``: the titles and texts hash to the
  version's content hash (SHA-256 of the canonical JSON of title_en, title_fr, text_en and
  text_fr), and each event's ``text_hash`` is the content hash of its notice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
except ImportError:  # pragma: no cover - the message is the point
    sys.stderr.write(
        "verify.py needs the 'cryptography' package: python3 -m pip install cryptography\n"
    )
    sys.exit(2)

FORMAT = "vrm-proof-bundle/1"
MANIFEST = "manifest.json"
GENESIS = "0" * 64
SIGNATURE_PREFIX = "\u2014 "
HEX64 = re.compile(r"^[0-9a-f]{64}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
B64URL = re.compile(r"^[A-Za-z0-9_-]*$")

EXIT_OK, EXIT_FAILED, EXIT_UNREADABLE, EXIT_PENDING = 0, 1, 2, 3


class Invalid(Exception):
    """A check that did not pass; the message says why."""


# ---- encodings ------------------------------------------------------------------------


def b64_strict(text: str) -> bytes:
    """Standard base64, accepted only in its one canonical spelling."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Invalid(f"not base64: {text[:20]!r}") from exc
    if base64.b64encode(data).decode() != text:
        raise Invalid(f"not canonical base64: {text[:20]!r}")
    return data


def b64url_strict(text: str) -> bytes:
    """Unpadded base64url (JOSE), accepted only in its one canonical spelling."""
    if not B64URL.match(text):
        raise Invalid("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Invalid("not base64url") from exc
    if base64.urlsafe_b64encode(data).decode().rstrip("=") != text:
        raise Invalid("not canonical base64url")
    return data


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(document: Any) -> str:
    """The portal's hashed serialisation: sorted keys, no spaces, UTF-8 text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_text(folder: Path, name: str) -> str:
    try:
        return (folder / name).read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise Invalid(f"{name} is missing") from exc
    except UnicodeDecodeError as exc:
        raise Invalid(f"{name} is not UTF-8 text") from exc


def read_json(folder: Path, name: str) -> Any:
    try:
        return json.loads(read_text(folder, name))
    except ValueError as exc:
        raise Invalid(f"{name} is not valid JSON: {exc}") from exc


def field(document: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(document, dict) or key not in document:
        raise Invalid(f"{where} has no {key!r}")
    value = document[key]
    if kind is int and isinstance(value, bool):
        raise Invalid(f"{where}: {key!r} is not a number")
    if not isinstance(value, kind):
        raise Invalid(f"{where}: {key!r} is not a {kind.__name__}")
    return value


# ---- RFC 9162 Merkle trees -------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root that ``path`` leads to from ``leaf``."""
    if not 0 <= index < size:
        raise Invalid(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Invalid("the proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn:
        raise Invalid("the proof is too short")
    return r


# ---- C2SP signed notes and checkpoints ----------------------------------------------------


class VerifierKey:
    def __init__(self, text: str) -> None:
        if text.count("\n") != 1 or not text.endswith("\n"):
            raise Invalid("vkey.txt is one line of text")
        parts = text[:-1].split("+", 2)
        if len(parts) != 3:
            raise Invalid("a verifier key is <name>+<key id>+<base64 key>")
        self.name, hex_id, data = parts
        raw = b64_strict(data)
        if len(raw) != 33 or raw[0] != 0x01:
            raise Invalid("only Ed25519 verifier keys (type 0x01) are supported")
        self.public_key = raw[1:]
        self.key_id = hashlib.sha256(self.name.encode() + b"\n\x01" + self.public_key).digest()[:4]
        if hex_id != self.key_id.hex():
            raise Invalid("the key ID does not match the key's name and public key")

    def open(self, note: str) -> str:
        """The note's text, once a valid signature by this key is found on it."""
        text, separator, signatures = note.rpartition("\n\n")
        if not separator or not signatures.endswith("\n"):
            raise Invalid("the note has no signature block")
        text += "\n"
        for line in signatures[:-1].split("\n"):
            if not line.startswith(SIGNATURE_PREFIX):
                raise Invalid("a signature line starts with an em dash and a space")
            name, _, stamp = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
            if name != self.name:
                continue
            blob = b64_strict(stamp)
            if len(blob) != 68 or blob[:4] != self.key_id:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(self.public_key).verify(blob[4:], text.encode())
            except InvalidSignature as exc:
                raise Invalid("the Ed25519 signature does not verify") from exc
            return text
        raise Invalid(f"no signature by the key {self.name!r} on the note")


def parse_checkpoint(text: str) -> tuple[str, int, bytes, list[str]]:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise Invalid("a checkpoint has an origin, a size and a root hash, one per line")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise Invalid("the checkpoint's size is not a decimal number")
    root = b64_strict(root_text)
    if len(root) != 32:
        raise Invalid("the checkpoint's root hash is not 32 bytes")
    return origin, int(size_text), root, lines[3:-1]


# ---- JWS receipts ---------------------------------------------------------------------


def _jwk_public_key(jwk: dict[str, Any], alg: str) -> Any:
    if alg in ("Ed25519", "EdDSA"):
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise Invalid(f"key {jwk.get('kid')!r} is not an Ed25519 key")
        return Ed25519PublicKey.from_public_bytes(b64url_strict(str(jwk.get("x", ""))))
    if alg == "ES256":
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise Invalid(f"key {jwk.get('kid')!r} is not a P-256 key")
        x = int.from_bytes(b64url_strict(str(jwk.get("x", ""))), "big")
        y = int.from_bytes(b64url_strict(str(jwk.get("y", ""))), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raise Invalid(f"unsupported JWS algorithm {alg!r}")


def _verify_with(jwk: dict[str, Any], alg: str, signing_input: bytes, signature: bytes) -> bool:
    key = _jwk_public_key(jwk, alg)
    try:
        if alg == "ES256":
            if len(signature) != 64:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, signing_input)
    except InvalidSignature:
        return False
    return True


def verify_jws(compact: str, keys: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The payload of a compact JWS whose signature a key of ``keys`` verifies, and
    which key (its ``kid``)."""
    parts = compact.split(".")
    if len(parts) != 3:
        raise Invalid("a compact JWS has three parts separated by dots")
    try:
        header = json.loads(b64url_strict(parts[0]))
        payload = json.loads(b64url_strict(parts[1]))
    except ValueError as exc:
        raise Invalid("the JWS header or payload is not JSON") from exc
    signature = b64url_strict(parts[2])
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise Invalid("the JWS header and payload are JSON objects")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg == "none":
        raise Invalid("the JWS names no signature algorithm")
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.get("kid") == kid]
    if not candidates:
        raise Invalid(f"jwks.json has no key {kid!r}")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    for jwk in candidates:
        if jwk.get("alg") not in (None, alg):
            continue
        if _verify_with(jwk, alg, signing_input, signature):
            return payload, str(jwk.get("kid", "?"))
    raise Invalid(f"the {alg} signature does not verify with the key {kid!r} of jwks.json")


# ---- the checks -------------------------------------------------------------------------


class Report:
    """Prints one line per check and counts the outcomes."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.pending = 0

    def ok(self, message: str) -> None:
        self.passed += 1
        print(f"OK {message}")

    def fail(self, message: str) -> None:
        self.failed += 1
        print(f"FAIL {message}")

    def wait(self, message: str) -> None:
        self.pending += 1
        print(f"PENDING {message}")

    def note(self, message: str) -> None:
        print(f"NOTE {message}")

    def check(self, what: str, test: Any, *args: Any) -> Any:
        """Run ``test(*args)``; print OK with its message or FAIL with the reason."""
        try:
            message = test(*args)
        except Invalid as exc:
            self.fail(f"{what}: {exc}")
            return None
        except Exception as exc:  # a malformed file must not stop the other checks
            self.fail(f"{what}: unreadable ({type(exc).__name__}: {exc})")
            return None
        self.ok(f"{what}: {message}" if message else what)
        return True


class Bundle:
    """The bundle's folder and its manifest; each method below is one check, which
    returns what it found (for the OK line) or raises ``Invalid`` (the FAIL line)."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.files: dict[str, str] = field(manifest, "files", dict, MANIFEST)
        self.subject = field(manifest, "subject_key", str, MANIFEST)
        filters = field(manifest, "filter", dict, MANIFEST)
        self.brand_filter = filters.get("brand")
        self.purpose_filter = filters.get("purpose")
        self.events: list[dict[str, Any]] = field(manifest, "events", list, MANIFEST)
        self.notices: list[dict[str, Any]] = field(manifest, "notices", list, MANIFEST)
        self.checkpoint: dict[str, Any] | None = manifest.get("checkpoint")
        self.verifier: VerifierKey | None = None
        self.checkpoint_time: str | None = None
        self.root: bytes | None = None
        self.size = 0
        self.keys: list[dict[str, Any]] | None = None
        #: Event hashes (hex) recomputed from the bodies, by seq.
        self.hashes: dict[int, str] = {}
        self.bodies: dict[int, dict[str, Any]] = {}
        self.notice_hashes: dict[tuple[str, str, int], str] = {}

    def listed(self, name: str) -> str:
        if name not in self.files:
            raise Invalid(f"{name} is not listed in manifest.json")
        return read_text(self.folder, name)

    # -- manifest

    def manifest_fields(self) -> str:
        if self.manifest.get("format") != FORMAT:
            raise Invalid(f"not a {FORMAT} manifest")
        generated = field(self.manifest, "generated_at", str, MANIFEST)
        if not TIMESTAMP.match(generated):
            raise Invalid("generated_at is not a UTC time such as 2026-01-31T12:00:00Z")
        for key in ("brand", "purpose"):
            value = self.manifest["filter"].get(key)
            if value is not None and not isinstance(value, str):
                raise Invalid(f"the {key} filter is not a string")
        if set(self.manifest["filter"]) != {"brand", "purpose"}:
            raise Invalid("the filter has keys other than brand and purpose")
        seqs = [field(e, "seq", int, "an event of manifest.json") for e in self.events]
        if seqs != sorted(set(seqs)):
            raise Invalid("the events are not listed once each, in chain order")
        scope = ", ".join(
            f"{key} {value}"
            for key, value in (("brand", self.brand_filter), ("purpose", self.purpose_filter))
            if value
        )
        return (
            f"{len(self.events)} event(s) of subject {self.subject}"
            f"{' (' + scope + ')' if scope else ''}, generated at {generated}"
        )

    def readmes(self) -> str:
        facts = (self.subject, str(self.manifest["generated_at"]))
        for name in ("README.en.txt", "README.fr.txt"):
            if not all(fact in self.listed(name) for fact in facts):
                raise Invalid(f"{name} describes another bundle (subject key, date)")
        return "the READMEs describe this bundle"

    def file_hash(self, name: str, digest: Any) -> str:
        if not isinstance(digest, str) or not HEX64.match(digest):
            raise Invalid("its SHA-256 in manifest.json is not 64 hex digits")
        if "\\" in name or name.startswith("/") or ".." in name.split("/"):
            raise Invalid("the name is not a path inside the bundle")
        try:
            data = (self.folder / name).read_bytes()
        except FileNotFoundError as exc:
            raise Invalid("missing") from exc
        if sha256_hex(data) != digest:
            raise Invalid("its SHA-256 is not the one in manifest.json: the file was changed")
        return "SHA-256 matches manifest.json"

    def references(self) -> str:
        named: list[str] = []
        for event in self.events:
            for key in ("body", "receipt", "proof"):
                if event.get(key) is not None:
                    named.append(str(event[key]))
        for notice in self.notices:
            texts = field(notice, "texts", dict, "a notice of manifest.json")
            named += [str(v) for v in texts.values()]
        named += ["vkey.txt", "jwks.json"]
        if self.checkpoint is not None:
            named.append("checkpoint.txt")
        unlisted = [name for name in named if name not in self.files]
        if unlisted:
            raise Invalid(f"{unlisted[0]} is named but has no SHA-256 in the manifest")
        return f"every file it names is listed with its SHA-256 ({len(self.files)} files)"

    # -- keys and the checkpoint

    def vkey(self) -> str:
        self.verifier = VerifierKey(self.listed("vkey.txt"))
        return f"Ed25519 key {self.verifier.name}+{self.verifier.key_id.hex()}"

    def signed_checkpoint(self) -> str:
        if self.verifier is None:
            raise Invalid("no usable verifier key (vkey.txt)")
        assert self.checkpoint is not None
        if self.checkpoint.get("file") != "checkpoint.txt":
            raise Invalid("manifest.json names another checkpoint file")
        text = self.verifier.open(self.listed("checkpoint.txt"))
        origin, size, root, extensions = parse_checkpoint(text)
        if origin != self.verifier.name:
            raise Invalid(f"the origin {origin!r} is not the key's name {self.verifier.name!r}")
        if self.manifest.get("log_origin") != origin:
            raise Invalid("manifest.json names another log origin")
        if field(self.checkpoint, "size", int, "the manifest's checkpoint") != size:
            raise Invalid("manifest.json gives the checkpoint another size")
        if self.checkpoint.get("root") != base64.b64encode(root).decode():
            raise Invalid("manifest.json gives the checkpoint another root hash")
        for line in extensions:
            if line.startswith("vrm-time "):
                self.checkpoint_time = line[len("vrm-time ") :]
        self.size, self.root = size, root
        when = f", signed at {self.checkpoint_time}" if self.checkpoint_time else ""
        return f"signed by {origin}, {size} events in the log{when}"

    def checkpoint_before_bundle(self) -> str:
        generated = str(self.manifest["generated_at"])
        if self.checkpoint_time is None:
            return "the checkpoint has no vrm-time line"
        signed = self.checkpoint_time.split(".")[0].rstrip("Z") + "Z"
        if signed > generated:
            raise Invalid(f"generated_at {generated} is before the checkpoint ({signed})")
        return f"the bundle was made after the checkpoint ({generated})"

    def jwks(self) -> str:
        document = json.loads(self.listed("jwks.json"))
        keys = field(document, "keys", list, "jwks.json")
        if not keys or not all(isinstance(k, dict) for k in keys):
            raise Invalid("jwks.json lists no key")
        self.keys = keys
        return f"{len(keys)} receipt key(s): " + ", ".join(str(k.get("kid")) for k in keys)

    # -- notices

    def notice(self, notice: dict[str, Any]) -> str:
        where = "the notice"
        brand = field(notice, "brand", str, where)
        purpose = field(notice, "purpose", str, where)
        version = field(notice, "version", int, where)
        content_hash = field(notice, "content_hash", str, where)
        texts = field(notice, "texts", dict, where)
        document: dict[str, str] = {}
        for lang in ("en", "fr"):
            expected = f"notices/{brand}/{purpose}/v{version}.{lang}.txt"
            if texts.get(lang) != expected:
                raise Invalid(f"its {lang} text is not {expected}")
            title = field(notice, f"title_{lang}", str, where)
            content = self.listed(expected)
            prefix = f"{title}\n\n"
            if not content.startswith(prefix) or not content.endswith("\n"):
                raise Invalid(f"{expected} is not its title, a blank line, then its text")
            document[f"title_{lang}"] = title
            document[f"text_{lang}"] = content[len(prefix) : -1]
        if sha256_hex(canonical_json(document).encode()) != content_hash:
            raise Invalid("the titles and texts do not hash to the notice's content hash")
        self.notice_hashes[(brand, purpose, version)] = content_hash
        return f"the English and French texts hash to {content_hash}"

    # -- events

    def event_body(self, event: dict[str, Any]) -> str:
        seq = field(event, "seq", int, "the event")
        name = f"events/{seq}.json"
        if event.get("body") != name:
            raise Invalid(f"its body is not {name}")
        body = self.listed(name)
        digest = sha256_hex(body.encode())
        if digest != event.get("hash"):
            raise Invalid("the body does not hash (SHA-256) to the event's hash")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise Invalid("the body is not a JSON object")
        if canonical_json(document) != body:
            raise Invalid("the body is not in canonical form")
        expected = {
            "seq": seq,
            "event_id": event.get("event_id"),
            "subject": self.subject,
            "brand": event.get("brand"),
            "purpose": event.get("purpose"),
            "purpose_version": event.get("purpose_version"),
            "action": event.get("action"),
            "occurred_at": event.get("occurred_at"),
        }
        for key, value in expected.items():
            if document.get(key) != value:
                raise Invalid(f"its {key} is not the one manifest.json gives")
        if self.brand_filter is not None and document["brand"] != self.brand_filter:
            raise Invalid(f"it is not an event of the brand {self.brand_filter}")
        if self.purpose_filter is not None and document["purpose"] != self.purpose_filter:
            raise Invalid(f"it is not an event of the purpose {self.purpose_filter}")
        prev = document.get("prev_hash")
        if not isinstance(prev, str) or not HEX64.match(prev):
            raise Invalid("its prev_hash is not a SHA-256 in hex")
        self.hashes[seq] = digest
        self.bodies[seq] = document
        return f"the body hashes to {digest}"

    def chain_link(self, seq: int) -> str:
        prev = self.bodies[seq]["prev_hash"]
        if seq == 1:
            if prev != GENESIS:
                raise Invalid("the first event of the ledger links to something before it")
            return "the first event of the ledger"
        if seq - 1 in self.hashes:
            if prev != self.hashes[seq - 1]:
                raise Invalid(f"prev_hash is not the hash of event {seq - 1}")
            return f"linked to event {seq - 1}"
        return f"links to event {seq - 1} (another consumer's: not in the bundle)"

    def notice_agreed(self, seq: int) -> str:
        document = self.bodies[seq]
        key = (document["brand"], document["purpose"], document["purpose_version"])
        if key not in self.notice_hashes:
            raise Invalid(f"the notice {key[0]}/{key[1]} v{key[2]} is not in the bundle")
        if document.get("text_hash") != self.notice_hashes[key]:
            raise Invalid("its text_hash is not the content hash of the notice")
        return f"agreed to the text of {key[0]}/{key[1]} v{key[2]}"

    def inclusion(self, event: dict[str, Any]) -> str:
        seq = event["seq"]
        if self.root is None:
            raise Invalid("no checkpoint that verifies to check the proof against")
        name = f"proofs/{seq}.json"
        if event.get("proof") != name:
            raise Invalid(f"its proof is not {name}")
        proof = json.loads(self.listed(name))
        index = field(proof, "index", int, name)
        size = field(proof, "size", int, name)
        if index != seq - 1:
            raise Invalid(f"the proof is for leaf {index}, not {seq - 1} (seq - 1)")
        if size != self.size:
            raise Invalid(f"the proof is for a tree of {size}, not the checkpoint's {self.size}")
        if proof.get("event_hash") != self.hashes[seq]:
            raise Invalid("the proof is for another event hash")
        path = [b64_strict(h) for h in field(proof, "hashes", list, name)]
        if any(len(h) != 32 for h in path):
            raise Invalid("a proof hash is not 32 bytes")
        leaf = leaf_hash(bytes.fromhex(self.hashes[seq]))
        if root_from_inclusion(index, size, leaf, path) != self.root:
            raise Invalid("the inclusion proof does not lead to the checkpoint's root hash")
        return f"in the log: leaf {index} of the checkpoint of size {size}"

    def receipt(self, event: dict[str, Any]) -> str:
        seq = event["seq"]
        name = f"receipts/{seq}.jws"
        if event.get("receipt") != name:
            raise Invalid(f"its receipt is not {name}")
        if self.keys is None:
            raise Invalid("no usable receipt key (jwks.json)")
        compact = self.listed(name)
        payload, kid = verify_jws(compact, self.keys)
        body = self.bodies[seq]
        claims = payload.get("ledgerEvent")
        # Receipts name their event by id and content hash (the event without "seq" and
        # "prev_hash"), signed before the event had its place; older ones by seq and hash.
        content = {k: v for k, v in body.items() if k not in ("seq", "prev_hash")}
        promised = {
            "eventId": body["event_id"],
            "contentHash": hashlib.sha256(canonical_json(content).encode()).hexdigest(),
        }
        placed = {"seq": seq, "eventId": body["event_id"], "hash": self.hashes[seq]}
        if not isinstance(claims, dict) or (
            claims != placed and {k: v for k, v in claims.items() if k != "integrateBy"} != promised
        ):
            raise Invalid("the receipt's ledgerEvent is not this event (id, content hash)")
        for claim, key in (
            ("noticeHash", "text_hash"),
            ("purposeKey", "purpose"),
            ("purposeVersion", "purpose_version"),
            ("consentStatus", "action"),
        ):
            if payload.get(claim) != body.get(key):
                raise Invalid(f"the receipt's {claim} is not the event's {key}")
        return f"signed with the key {kid}, names this event"

    def run(self, report: Report) -> None:
        report.check("manifest.json", self.manifest_fields)
        report.check("manifest.json", self.references)
        report.check("manifest.json", self.readmes)
        for name in sorted(self.files):
            report.check(name, self.file_hash, name, self.files[name])
        report.check("vkey.txt", self.vkey)
        if self.checkpoint is not None and report.check("checkpoint.txt", self.signed_checkpoint):
            report.check("checkpoint.txt", self.checkpoint_before_bundle)
        report.check("jwks.json", self.jwks)
        for notice in self.notices:
            label = f"notice {notice.get('brand')}/{notice.get('purpose')} v{notice.get('version')}"
            report.check(label, self.notice, notice)
        for event in self.events:
            seq = event.get("seq")
            label = f"event {seq}"
            if not report.check(f"{label} body", self.event_body, event):
                continue
            assert isinstance(seq, int)
            report.check(f"{label} chain", self.chain_link, seq)
            report.check(f"{label} notice", self.notice_agreed, seq)
            if event.get("in_checkpoint") is False and event.get("proof") is None:
                if self.root is not None and seq <= self.size:
                    report.fail(f"{label} log: the checkpoint covers it, yet it has no proof")
                    continue
                report.wait(
                    f"{label} log: not in a signed checkpoint yet; ask for a new bundle "
                    "after the next checkpoint (every few minutes) to prove it in the log"
                )
            else:
                report.check(f"{label} log", self.inclusion, event)
            if event.get("receipt") is None:
                report.note(
                    f"{label} receipt: none in the bundle (the portal no longer keeps it, "
                    "e.g. after the account was erased); the event and its proof stand alone"
                )
            else:
                report.check(f"{label} receipt", self.receipt, event)


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__)
        print("Usage: python3 verify.py [BUNDLE FOLDER]  (default: the folder of verify.py)")
        return EXIT_UNREADABLE
    folder = Path(argv[1]) if len(argv) == 2 else Path(__file__).resolve().parent
    report = Report()
    try:
        manifest = read_json(folder, MANIFEST)
        bundle = Bundle(folder, manifest)
    except Invalid as exc:
        report.fail(f"manifest.json: {exc}")
        return EXIT_UNREADABLE
    bundle.run(report)
    total = report.passed + report.failed
    if report.failed:
        print(f"FAIL {report.failed} of {total} checks failed: do not trust this bundle")
        return EXIT_FAILED
    if report.pending:
        print(
            f"OK all {total} checks passed; {report.pending} event(s) wait for the next checkpoint"
        )
        return EXIT_PENDING
    print(f"OK all {total} checks passed")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv))
