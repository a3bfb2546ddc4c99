"""Passkeys: the WebAuthn ceremonies (through py_webauthn) and the account's list of them.

The relying party is the portal at its public address: the RP ID is the host of
``VRM_PUBLIC_BASE_URL`` and the only expected origin is that URL's origin. Each ceremony
has two halves:

1. the options: a fresh random challenge, whose digest is stored (``PasskeyChallenge``)
   with its purpose and a short expiry, while the browser's session keeps the challenge
   itself (``Ceremony``);
2. the answer: the challenge is used up first (deleted, whatever the outcome), then
   py_webauthn checks the type, challenge, origin, RP ID, user presence and user
   verification (required: a passkey is two factors in itself), the signature and the
   signature counter (a counter that goes back means a cloned authenticator).

Passkeys are discoverable (resident) credentials, so signing in needs no email address:
the authenticator returns the user handle it was made for.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from vrm_portal.accounts.errors import AccountError
from vrm_portal.accounts.history import ClientInfo, record_event
from vrm_portal.accounts.models import Account, EventKind
from vrm_portal.accounts.passkeys.models import CHALLENGE_PURPOSES, Passkey, PasskeyChallenge
from vrm_portal.accounts.social.models import LinkedIdentity

log = logging.getLogger(__name__)

#: How long a challenge may be answered; the browser is told the same (``timeout``).
CHALLENGE_TTL = timedelta(minutes=5)
CHALLENGE_BYTES = 32
USER_HANDLE_BYTES = 32
NAME_MAX = 64
#: Ed25519, ECDSA P-256 and RSA PKCS#1 v1.5: what passkey providers use.
ALGORITHMS = [
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]


class PasskeyError(AccountError):
    """Base of the passkey errors."""


class PasskeyRejected(PasskeyError):
    """The browser's answer cannot be accepted. ``reason``: ``expired`` (no such challenge,
    used already or too old), ``invalid`` (a check failed), ``unknown`` (no such passkey
    here, or not this account's), ``cloned`` (the counter went back), ``duplicate`` (the
    passkey is registered already)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PasskeyNotFound(PasskeyError):
    pass


class InvalidPasskeyName(PasskeyError):
    """``reason``: ``empty``, ``too_long`` or ``control_characters``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PasskeyStillNeeded(PasskeyError):
    """Removing this passkey would leave the account without a way in. ``reason``:
    ``last_method`` (no password, no provider, no other passkey) or ``staff_second_step``
    (a staff member without an authenticator app removing their last passkey)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RelyingParty:
    """The portal as WebAuthn sees it."""

    id: str
    name: str
    origin: str

    @classmethod
    def from_base_url(cls, base_url: str, name: str) -> RelyingParty:
        """RP ID = the host of the public base URL; origin = its scheme, host and port."""
        parts = urlsplit(base_url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        default_port = 443 if parts.scheme == "https" else 80
        port = f":{parts.port}" if parts.port and parts.port != default_port else ""
        return cls(id=host, name=name, origin=f"{parts.scheme}://{host}{port}")


@dataclass(frozen=True)
class Ceremony:
    """What the browser's session keeps between the options and the answer."""

    purpose: str
    challenge: bytes
    #: The account the ceremony is for (all but a sign-in with a passkey alone).
    account_id: int | None = None
    #: Registration only: the user handle the new passkey is made for.
    user_handle: bytes | None = None


# ---- challenges -------------------------------------------------------------------------


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def issue_challenge(session: Session, purpose: str, *, now: datetime) -> bytes:
    """A new random challenge for one ceremony of ``purpose``; expired ones are purged."""
    if purpose not in CHALLENGE_PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    session.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at <= now))
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    session.add(
        PasskeyChallenge(
            challenge_hash=_digest(challenge),
            purpose=purpose,
            created_at=now,
            expires_at=now + CHALLENGE_TTL,
        )
    )
    session.flush()
    return challenge


def use_challenge(session: Session, challenge: bytes, purpose: str, *, now: datetime) -> None:
    """Use up ``challenge``; ``PasskeyRejected("expired")`` if it was not live. One DELETE,
    so that two answers racing for one challenge cannot both get through."""
    result = session.execute(
        delete(PasskeyChallenge).where(
            PasskeyChallenge.challenge_hash == _digest(challenge),
            PasskeyChallenge.purpose == purpose,
            PasskeyChallenge.expires_at > now,
        )
    )
    if getattr(result, "rowcount", 0) != 1:
        raise PasskeyRejected("expired")


# ---- the account's passkeys -------------------------------------------------------------


def list_passkeys(session: Session, account: Account) -> list[Passkey]:
    return list(
        session.scalars(
            select(Passkey).where(Passkey.account_id == account.id).order_by(Passkey.id)
        )
    )


def has_passkeys(session: Session, account: Account) -> bool:
    found = session.scalar(select(Passkey.id).where(Passkey.account_id == account.id).limit(1))
    return found is not None


def get_passkey(session: Session, account: Account, passkey_id: int) -> Passkey:
    """One of the account's passkeys; ``PasskeyNotFound`` for anyone else's."""
    passkey = session.get(Passkey, passkey_id) if 0 < passkey_id < 2**31 else None
    if passkey is None or passkey.account_id != account.id:
        raise PasskeyNotFound()
    return passkey


def normalise_name(raw: str) -> str:
    """The name as stored: trimmed, inner whitespace collapsed; ``InvalidPasskeyName``."""
    name = " ".join(raw.split())
    if not name:
        raise InvalidPasskeyName("empty")
    if len(name) > NAME_MAX:
        raise InvalidPasskeyName("too_long")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidPasskeyName("control_characters")
    return name


def rename_passkey(
    session: Session,
    account: Account,
    passkey_id: int,
    name: str,
    *,
    client: ClientInfo | None = None,
) -> Passkey:
    passkey = get_passkey(session, account, passkey_id)
    new_name = normalise_name(name)
    if new_name != passkey.name:
        old_name, passkey.name = passkey.name, new_name
        record_event(
            session, account, EventKind.PASSKEY_RENAMED, client, name=new_name, old_name=old_name
        )
    session.flush()
    return passkey


def removal_problem(session: Session, account: Account, passkey: Passkey) -> str | None:
    """Why ``passkey`` may not be removed (a ``PasskeyStillNeeded`` reason), or None."""
    others = session.scalar(
        select(func.count(Passkey.id)).where(
            Passkey.account_id == account.id, Passkey.id != passkey.id
        )
    )
    if others:
        return None
    if account.is_staff and not account.has_two_factor:
        return "staff_second_step"
    if account.password_hash is None:
        identities = session.scalar(
            select(func.count(LinkedIdentity.id)).where(LinkedIdentity.account_id == account.id)
        )
        if not identities:
            return "last_method"
    return None


def remove_passkey(
    session: Session,
    account: Account,
    passkey_id: int,
    *,
    client: ClientInfo | None = None,
) -> Passkey:
    """Forget one of the account's passkeys (the authenticator may keep its key: it no
    longer opens anything). ``PasskeyStillNeeded`` when it is the last way in."""
    passkey = get_passkey(session, account, passkey_id)
    problem = removal_problem(session, account, passkey)
    if problem:
        raise PasskeyStillNeeded(problem)
    session.delete(passkey)
    session.flush()
    record_event(session, account, EventKind.PASSKEY_REMOVED, client, name=passkey.name)
    return passkey


# ---- registration -----------------------------------------------------------------------


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    known = {t.value for t in AuthenticatorTransport}
    transports = [AuthenticatorTransport(t) for t in passkey.transports if t in known]
    return PublicKeyCredentialDescriptor(id=passkey.credential_id, transports=transports or None)


def display_name(account: Account) -> str:
    """How the passkey shows the account in the device's list: the name, else the email."""
    full = " ".join(part for part in (account.given_name, account.family_name) if part)
    return full or account.email


def registration_options(
    session: Session, account: Account, rp: RelyingParty, *, now: datetime
) -> tuple[dict[str, Any], Ceremony]:
    """Options for ``navigator.credentials.create()`` (as JSON) and the ceremony to keep.

    A discoverable credential with user verification is required; the account's passkeys
    are excluded, so that one authenticator does not register twice.
    """
    passkeys = list_passkeys(session, account)
    user_handle = passkeys[0].user_handle if passkeys else secrets.token_bytes(USER_HANDLE_BYTES)
    challenge = issue_challenge(session, "register", now=now)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_handle,
        user_name=account.email,
        user_display_name=display_name(account),
        challenge=challenge,
        timeout=int(CHALLENGE_TTL.total_seconds() * 1000),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[_descriptor(p) for p in passkeys],
        supported_pub_key_algs=ALGORITHMS,
    )
    ceremony = Ceremony("register", challenge, account_id=account.id, user_handle=user_handle)
    return options_to_json_dict(options), ceremony


def register_passkey(
    session: Session,
    account: Account,
    ceremony: Ceremony,
    credential: str,
    name: str,
    rp: RelyingParty,
    *,
    now: datetime,
    client: ClientInfo | None = None,
) -> Passkey:
    """Check the browser's answer to ``registration_options`` and keep the new passkey.

    ``InvalidPasskeyName`` before anything is used up; then ``PasskeyRejected``.
    """
    passkey_name = normalise_name(name)
    if (
        ceremony.purpose != "register"
        or ceremony.account_id != account.id
        or ceremony.user_handle is None
    ):
        raise PasskeyRejected("expired")
    use_challenge(session, ceremony.challenge, "register", now=now)
    try:
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=ceremony.challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
            supported_pub_key_algs=ALGORITHMS,
        )
    except WebAuthnException as exc:
        log.info("passkey registration refused for account %s: %s", account.id, exc)
        raise PasskeyRejected("invalid") from exc
    taken = session.scalar(
        select(Passkey.id).where(Passkey.credential_id == verified.credential_id)
    )
    if taken is not None:
        raise PasskeyRejected("duplicate")
    passkey = Passkey(
        account_id=account.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        user_handle=ceremony.user_handle,
        sign_count=verified.sign_count,
        transports=[t.value for t in parsed.response.transports or []],
        backed_up=verified.credential_backed_up,
        name=passkey_name,
        created_at=now,
    )
    session.add(passkey)
    session.flush()
    record_event(session, account, EventKind.PASSKEY_ADDED, client, name=passkey_name)
    return passkey


# ---- authentication ---------------------------------------------------------------------


def authentication_options(
    session: Session,
    rp: RelyingParty,
    *,
    purpose: str,
    account: Account | None,
    now: datetime,
) -> tuple[dict[str, Any], Ceremony]:
    """Options for ``navigator.credentials.get()`` (as JSON) and the ceremony to keep.

    Without ``account`` (signing in with a passkey alone) no credential is listed: the
    browser offers the passkeys it holds for the portal. With one (second step, confirming
    it is you) only that account's passkeys are allowed.
    """
    challenge = issue_challenge(session, purpose, now=now)
    allowed = [_descriptor(p) for p in list_passkeys(session, account)] if account else []
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=int(CHALLENGE_TTL.total_seconds() * 1000),
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    ceremony = Ceremony(purpose, challenge, account_id=account.id if account else None)
    return options_to_json_dict(options), ceremony


def sign_in_ceremony(credential: str) -> Ceremony:
    """The ceremony of a sign-in with a passkey alone, read from the answer itself.

    Such a sign-in keeps nothing in the browser's session: the sign-in page asks for its
    options in the background, and a session cookie set by that answer could land after
    the password form's and undo its sign-in. The challenge named in the answer must
    still be one the portal handed out for a sign-in, unused and fresh (``authenticate``
    uses it up), and the origin and signature checks do the rest.
    """
    try:
        parsed = parse_authentication_credential_json(credential)
        client_data = parse_client_data_json(bytes(parsed.response.client_data_json))
    except (WebAuthnException, ValueError) as exc:
        raise PasskeyRejected("invalid") from exc
    return Ceremony("sign_in", client_data.challenge)


def authenticate(
    session: Session,
    ceremony: Ceremony,
    credential: str,
    rp: RelyingParty,
    *,
    purpose: str,
    account: Account | None,
    now: datetime,
    client: ClientInfo | None = None,
) -> Passkey:
    """Check the browser's answer to ``authentication_options``: the passkey that signed.

    With ``account``, the passkey must be that account's. The use (or a refused answer
    from a known passkey) is recorded in the account's security history.
    """
    expected_account = account.id if account else None
    if ceremony.purpose != purpose or ceremony.account_id != expected_account:
        raise PasskeyRejected("expired")
    use_challenge(session, ceremony.challenge, purpose, now=now)
    try:
        parsed = parse_authentication_credential_json(credential)
    except WebAuthnException as exc:
        raise PasskeyRejected("invalid") from exc
    passkey = session.scalars(
        select(Passkey).where(Passkey.credential_id == parsed.raw_id)
    ).one_or_none()
    if passkey is None or (account is not None and passkey.account_id != account.id):
        raise PasskeyRejected("unknown")
    user_handle = parsed.response.user_handle
    if user_handle is None and account is None:
        raise PasskeyRejected("unknown")  # a discoverable credential names its user
    if user_handle is not None and not hmac.compare_digest(user_handle, passkey.user_handle):
        raise PasskeyRejected("unknown")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=ceremony.challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        reason = "cloned" if "sign count" in str(exc) else "invalid"
        if reason == "cloned":
            log.warning("passkey %s: signature counter went back (cloned?): %s", passkey.id, exc)
        else:
            log.info("passkey %s refused: %s", passkey.id, exc)
        record_event(
            session,
            passkey.account,
            EventKind.PASSKEY_REJECTED,
            client,
            name=passkey.name,
            reason=reason,
        )
        raise PasskeyRejected(reason) from exc
    passkey.sign_count = verified.new_sign_count
    passkey.backed_up = verified.credential_backed_up
    passkey.last_used_at = now
    session.flush()
    record_event(
        session,
        passkey.account,
        EventKind.PASSKEY_USED,
        client,
        name=passkey.name,
        used_for=purpose,
    )
    return passkey
