"""The receipt keys: the one that signs, the retired ones that still verify, and rotation.

Two files, named by the settings:

- ``VRM_RECEIPT_SIGNING_KEY_FILE``: the current private key (PEM). It signs every new
  receipt.
- ``VRM_RECEIPT_RETIRED_KEYS_FILE`` (default: beside it, ``<name>.retired.json``): a JWKS
  of the public halves of the keys that signed receipts before, newest first. It never
  holds a private key, so a retired key can sign nothing any more.

``/.well-known/jwks.json`` serves the current key first, then the retired ones. Each
``kid`` is the key's RFC 7638 thumbprint, as in the header of every receipt it signed, so
a receipt stays checkable for as long as its key is listed.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import import_key

from vrm_portal.consent.receipts import (
    SigningKey,
    SigningKeyError,
    load_key_file,
    new_private_key_pem,
    signing_key_from_pem,
)

#: ``kty`` and curve of each receipt algorithm.
_KEY_TYPES = {"Ed25519": ("OKP", "Ed25519"), "ES256": ("EC", "P-256")}


class RetiredKeysError(SigningKeyError):
    """The retired keys file cannot be read, is not a JWKS of public keys, or cannot be
    written."""


@dataclass(frozen=True)
class ReceiptKeys:
    """The current signing key and the public JWKs of the retired ones, newest first."""

    current: SigningKey
    retired: tuple[dict[str, Any], ...] = ()

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public JWKS: the current key first, then the retired ones."""
        keys = [self.current.public_jwk()]
        keys += [dict(jwk) for jwk in self.retired if jwk["kid"] != self.current.kid]
        return {"keys": keys}


@dataclass(frozen=True)
class Rotation:
    """What ``rotate_receipt_key`` did: the kid now signing and the kid retired."""

    current_kid: str
    algorithm: str
    retired_kid: str
    retired_count: int


def load_receipt_keys(key_file: Path, retired_file: Path) -> ReceiptKeys:
    return ReceiptKeys(load_key_file(key_file), load_retired_keys(retired_file))


def load_retired_keys(path: Path) -> tuple[dict[str, Any], ...]:
    """The public JWKs in ``path``; none when the file does not exist (never rotated).

    Refuses a file that is not a JWKS, a private key, an algorithm other than Ed25519 or
    ES256, and a ``kid`` that is not the key's thumbprint.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise RetiredKeysError(f"cannot read {path}: {exc}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise RetiredKeysError(f"{path} is not JSON: {exc}") from exc
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise RetiredKeysError(f'{path} must be a JWKS: {{"keys": [...]}}')
    return tuple(_public_jwk(entry, f"{path}, key {n}") for n, entry in enumerate(entries, 1))


def _public_jwk(entry: object, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise RetiredKeysError(f"{where}: not a JSON object")
    algorithm = entry.get("alg")
    if (entry.get("kty"), entry.get("crv")) != _KEY_TYPES.get(str(algorithm)):
        raise RetiredKeysError(
            f"{where}: must be an Ed25519 (OKP) key with alg Ed25519, "
            "or a P-256 (EC) key with alg ES256"
        )
    try:
        key = import_key(entry)
    except (JoseError, ValueError, TypeError) as exc:
        raise RetiredKeysError(f"{where}: not a usable public key ({exc})") from exc
    if key.is_private:
        raise RetiredKeysError(f"{where} is a private key: keep only public keys there")
    kid = key.thumbprint()
    if entry.get("kid") != kid:
        raise RetiredKeysError(f"{where}: kid must be the key's RFC 7638 thumbprint, {kid}")
    jwk: dict[str, Any] = dict(key.as_dict(private=False))
    jwk.update({"kid": kid, "alg": algorithm, "use": "sig"})
    return jwk


def rotate_receipt_key(
    key_file: Path, retired_file: Path, algorithm: str | None = None
) -> Rotation:
    """Make a new key current and retire the one in ``key_file``.

    The new key has ``algorithm`` (default: the current key's). The current key's public
    half goes first in ``retired_file``, so the receipts it signed still verify; its
    private half is overwritten by the new key, so nothing can sign with it again. Each
    file is replaced at once (a temporary file renamed over it) and keeps its owner and
    mode. The retired keys are written first: when the key file cannot be replaced, the
    previous key stays current (and listed as retired too, which changes nothing).
    Running processes keep the keys they loaded until they restart.
    """
    if key_file.absolute() == retired_file.absolute():
        raise RetiredKeysError(f"{retired_file} is the signing key file itself")
    previous = load_key_file(key_file)
    retired = load_retired_keys(retired_file)
    pem = new_private_key_pem(algorithm or previous.algorithm)
    current = signing_key_from_pem(pem, key_file)
    kept = [previous.public_jwk(), *(jwk for jwk in retired if jwk["kid"] != previous.kid)]
    document = json.dumps({"keys": kept}, indent=2) + "\n"
    try:
        _replace(retired_file, document.encode(), new_mode=0o644)
    except OSError as exc:
        raise RetiredKeysError(
            f"cannot write {retired_file}: {exc.strerror or exc}; nothing changed"
        ) from exc
    try:
        _replace(key_file, pem, new_mode=0o600)
    except OSError as exc:
        raise SigningKeyError(
            f"cannot write the receipt signing key {key_file}: {exc.strerror or exc}; "
            "the key did not change"
        ) from exc
    return Rotation(current.kid, current.algorithm, previous.kid, len(kept))


def _replace(path: Path, data: bytes, *, new_mode: int) -> None:
    """Write ``data`` as ``path`` at once; an existing file's owner and mode are kept."""
    try:
        existing: os.stat_result | None = path.stat()
    except FileNotFoundError:
        existing = None
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if existing is None:
            os.chmod(name, new_mode)
        else:
            os.chmod(name, stat.S_IMODE(existing.st_mode))
            with contextlib.suppress(PermissionError):  # giving a file away takes root
                os.chown(name, existing.st_uid, existing.st_gid)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
