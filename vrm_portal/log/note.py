"""C2SP ``signed-note`` with Ed25519, and the ``tlog-checkpoint`` body it signs.

A note is UTF-8 text ending in a newline, then a blank line, then signature lines
``— <key name> <base64(key ID || signature)>``. For Ed25519 the key ID is the first
four bytes of ``SHA-256(key name || 0x0A || 0x01 || public key)`` and the signature is
over the note text (every line, with its final newline). A verifier key is written
``<name>+<key ID, 8 hex digits>+<base64(0x01 || public key)>``.

A checkpoint's text is the origin, the tree size in decimal and the base64 root hash,
one per line, then optional extension lines.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "


class NoteError(ValueError):
    """A note, key or checkpoint that is malformed or does not verify."""


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    data = base64.b64encode(bytes([ED25519]) + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{data}"


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public_key: Ed25519PublicKey


def parse_verifier_key(text: str) -> Verifier:
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("a verifier key is <name>+<key id>+<base64 key>")
    name, hex_id, data = parts
    try:
        raw = base64.b64decode(data, validate=True)
        wanted_id = bytes.fromhex(hex_id)
    except ValueError as exc:
        raise NoteError(f"the verifier key is not readable: {exc}") from exc
    if len(raw) != 33 or raw[0] != ED25519:
        raise NoteError("only Ed25519 verifier keys (type 0x01) are supported")
    if key_id(name, raw[1:]) != wanted_id:
        raise NoteError("the verifier key's id does not match its name and key")
    return Verifier(name, wanted_id, Ed25519PublicKey.from_public_bytes(raw[1:]))


def sign(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: ``text`` (ending in a newline), a blank line, one signature."""
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteError("a note's text ends with a newline and has no blank line")
    public = raw_public_key(private_key.public_key())
    signature = private_key.sign(text.encode())
    stamp = base64.b64encode(key_id(name, public) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {stamp}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The note's text, once a signature by ``verifier`` is found valid on it."""
    text, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise NoteError("the note has no signature block")
    text += "\n"
    for line in signatures.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, stamp = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        if name != verifier.name:
            continue
        try:
            blob = base64.b64decode(stamp, validate=True)
        except ValueError as exc:
            raise NoteError("a signature is not base64") from exc
        if len(blob) != 4 + 64 or blob[:4] != verifier.key_id:
            continue
        try:
            verifier.public_key.verify(blob[4:], text.encode())
        except InvalidSignature as exc:
            raise NoteError("the signature does not verify") from exc
        return text
    raise NoteError(f"no signature by {verifier.name!r} on the note")


# ---- checkpoints -------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint has an origin, a size and a root hash, one per line")
    origin, size_text, root_text, *rest = lines[:-1]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise NoteError("the checkpoint's size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError as exc:
        raise NoteError("the checkpoint's root hash is not base64") from exc
    if len(root) != 32:
        raise NoteError("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(origin, int(size_text), root, tuple(rest))


def key_id_number(name: str, public_key: bytes) -> int:
    """The key ID as the big-endian uint32 the C2SP text describes."""
    value: int = struct.unpack(">I", key_id(name, public_key))[0]
    return value
