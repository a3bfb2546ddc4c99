"""A software passkey authenticator: it answers WebAuthn options as a browser and a
platform authenticator would (ES256 keys, "none" attestation), so that the server's
checks (challenge, origin, RP ID, flags, signature, counter) run for real without a
browser. Knobs make it misbehave: another origin, no user verification, a counter that
goes back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

#: Authenticator data flags.
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftPasskey:
    credential_id: bytes
    rp_id: str
    user_handle: bytes
    key: ec.EllipticCurvePrivateKey
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    origin: str = "http://localhost"
    #: Whether the "user" is verified (fingerprint, PIN...); the portal requires it.
    user_verified: bool = True
    #: Whether the authenticator keeps a signature counter (synced passkeys do not).
    counter: bool = True
    passkeys: list[SoftPasskey] = field(default_factory=list)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        document = {
            "type": kind,
            "challenge": challenge,
            "origin": origin or self.origin,
            "crossOrigin": False,
        }
        return json.dumps(document).encode()

    def _flags(self, *extra: int) -> int:
        flags = UP | (UV if self.user_verified else 0)
        for bit in extra:
            flags |= bit
        return flags

    def create(self, options: dict[str, Any], *, origin: str | None = None) -> dict[str, Any]:
        """The answer to ``navigator.credentials.create({publicKey: options})``."""
        rp_id = options["rp"]["id"]
        user_handle = unb64url(options["user"]["id"])
        excluded = {unb64url(c["id"]) for c in options.get("excludeCredentials", [])}
        if any(p.credential_id in excluded for p in self.passkeys if p.rp_id == rp_id):
            raise RuntimeError("InvalidStateError: this authenticator holds one already")
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose_key = {
            1: 2,  # kty: EC2
            3: -7,  # alg: ES256
            -1: 1,  # crv: P-256
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
        passkey = SoftPasskey(os.urandom(16), rp_id, user_handle, key)
        self.passkeys.append(passkey)
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(AT)])
            + struct.pack(">I", 0)
            + bytes(16)  # AAGUID
            + struct.pack(">H", len(passkey.credential_id))
            + passkey.credential_id
            + cbor2.dumps(cose_key)
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return {
            "id": b64url(passkey.credential_id),
            "rawId": b64url(passkey.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        passkey: SoftPasskey | None = None,
        sign_count: int | None = None,
    ) -> dict[str, Any]:
        """The answer to ``navigator.credentials.get({publicKey: options})``."""
        rp_id = options["rpId"]
        allowed = {unb64url(c["id"]) for c in options.get("allowCredentials", [])}
        if passkey is None:
            usable = [
                p
                for p in self.passkeys
                if p.rp_id == rp_id and (not allowed or p.credential_id in allowed)
            ]
            if not usable:
                raise RuntimeError("NotAllowedError: no passkey for this site")
            passkey = usable[0]
        if sign_count is not None:
            passkey.sign_count = sign_count
        elif self.counter:
            passkey.sign_count += 1
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", passkey.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = passkey.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(passkey.credential_id),
            "rawId": b64url(passkey.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(passkey.user_handle),
            },
        }
