"""Staff management: invitations by email, roles, disabling, second-factor resets.

Rules kept here, whatever page or command asks:

- an invitation is a single-use link, valid 72 hours by default, whose secret is made
  by the job that mails it (only its SHA-256 digest is stored);
- the last active admin can be neither disabled nor demoted (the admins' rows are locked
  while this is checked, so two admins cannot demote each other at once);
- a role change, a disabling or a second-factor reset ends the person's sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vrm_portal.accounts import second_factor
from vrm_portal.accounts.auth_sessions import revoke_other_sessions
from vrm_portal.accounts.history import record_event
from vrm_portal.accounts.models import Account, EventKind, StaffRole
from vrm_portal.accounts.service import normalise_email, prepare_registration
from vrm_portal.accounts.tokens import hash_secret, new_secret
from vrm_portal.admin.errors import AlreadyExists, NotAllowed, NothingToDo
from vrm_portal.admin.models import StaffInvitation
from vrm_portal.audit import service as audit
from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.jobs.service import enqueue

INVITATION_TTL = timedelta(hours=72)
INVITATION_JOB = "admin.staff_invitation"


def staff_members(session: Session) -> list[Account]:
    return list(
        session.scalars(
            select(Account).where(Account.staff_role.is_not(None)).order_by(Account.email)
        )
    )


def open_invitations(session: Session) -> list[StaffInvitation]:
    return list(
        session.scalars(
            select(StaffInvitation)
            .where(StaffInvitation.used_at.is_(None), StaffInvitation.expires_at > utcnow())
            .order_by(StaffInvitation.created_at.desc(), StaffInvitation.id)
        )
    )


def _check_brand(session: Session, role: StaffRole, brand_id: int | None) -> int | None:
    if role is StaffRole.BRAND_OPERATOR:
        if brand_id is None or session.get(Brand, brand_id) is None:
            raise NotAllowed("brand-required")
        return brand_id
    return None


def invite(
    session: Session,
    actor: Account,
    email: str,
    role: StaffRole,
    brand_id: int | None = None,
    *,
    ttl: timedelta = INVITATION_TTL,
) -> StaffInvitation:
    """Invite ``email`` to join the staff as ``role`` and queue the email with the link.

    Refused when the address already has an account (``AlreadyExists``), or an
    invitation to it is still open (``NothingToDo``: a double submit invites once).
    """
    address = normalise_email(email)
    brand = _check_brand(session, role, brand_id)
    if session.scalar(select(Account.id).where(Account.email == address)) is not None:
        raise AlreadyExists("account")
    now = utcnow()
    pending = session.scalar(
        select(StaffInvitation.id)
        .where(
            StaffInvitation.email == address,
            StaffInvitation.used_at.is_(None),
            StaffInvitation.expires_at > now,
        )
        .with_for_update()
    )
    if pending is not None:
        raise NothingToDo("pending")
    invitation = StaffInvitation(
        email=address,
        role=role.value,
        brand_id=brand,
        invited_by_id=actor.id,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(invitation)
    session.flush()
    enqueue(session, INVITATION_JOB, {"invitation_id": invitation.id})
    audit.record(
        session,
        actor=actor,
        action="staff.invited",
        object_type="staff_invitation",
        object_id=invitation.id,
        after={
            "email": address,
            "role": role.value,
            "brand_id": brand,
            "expires_at": invitation.expires_at,
        },
    )
    return invitation


def withdraw_invitation(session: Session, actor: Account, invitation: StaffInvitation) -> None:
    if invitation.used_at is not None:
        raise NothingToDo("used")
    invitation.used_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="staff.invitation_withdrawn",
        object_type="staff_invitation",
        object_id=invitation.id,
        before={"email": invitation.email, "role": invitation.role},
    )


def issue_link_secret(session: Session, invitation: StaffInvitation) -> str:
    """A fresh secret for the invitation's link (an earlier one stops working)."""
    secret = new_secret()
    invitation.token_hash = hash_secret(secret)
    session.flush()
    return secret


class InvitationProblem(Exception):
    """The link is unknown, used, or expired: ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def invitation_for(session: Session, secret: str, *, lock: bool = False) -> StaffInvitation:
    """The open invitation of a link's secret, or ``InvitationProblem``."""
    if not secret or len(secret) > 128:
        raise InvitationProblem("invalid")
    query = select(StaffInvitation).where(StaffInvitation.token_hash == hash_secret(secret))
    if lock:
        query = query.with_for_update()
    invitation = session.scalar(query)
    if invitation is None:
        raise InvitationProblem("invalid")
    if invitation.used_at is not None:
        raise InvitationProblem("used")
    if invitation.expires_at <= utcnow():
        raise InvitationProblem("expired")
    return invitation


def accept(session: Session, secret: str, password: str) -> Account:
    """Create the staff account of an invitation with its chosen password; the link is
    spent. The second factor is enrolled at the sign-in that follows (the staff TOTP
    enrolment). ``PasswordRejected`` on a weak password (nothing spent)."""
    invitation = invitation_for(session, secret, lock=True)
    prepared = prepare_registration(invitation.email, password)
    if session.scalar(select(Account.id).where(Account.email == prepared.email)) is not None:
        raise InvitationProblem("used")
    now = utcnow()
    account = Account(
        email=prepared.email,
        password_hash=prepared.password_hash,
        password_changed_at=now,
        email_verified_at=now,
        staff_role=invitation.role,
        staff_brand_id=invitation.brand_id,
    )
    session.add(account)
    session.flush()
    invitation.used_at = now
    invitation.account_id = account.id
    session.flush()
    record_event(session, account, EventKind.STAFF_ROLE_GRANTED, role=invitation.role)
    audit.record(
        session,
        actor=account,
        action="staff.invitation_accepted",
        object_type="account",
        object_id=account.id,
        after={"email": account.email, "role": invitation.role, "brand_id": invitation.brand_id},
    )
    return account


def _active_admin_ids(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(Account.id)
            .where(Account.staff_role == StaffRole.ADMIN.value, Account.disabled_at.is_(None))
            .order_by(Account.id)
            .with_for_update()
        )
    )


def _keep_an_admin(session: Session, account: Account) -> None:
    admins = _active_admin_ids(session)
    if account.id in admins and len(admins) <= 1:
        raise NotAllowed("last-admin")


@dataclass(frozen=True)
class RoleChange:
    before: str
    after: str


def change_role(
    session: Session, actor: Account, account: Account, role: StaffRole, brand_id: int | None
) -> RoleChange:
    if account.staff_role is None:
        raise NotAllowed("not-staff")
    brand = _check_brand(session, role, brand_id)
    if account.staff_role == role.value and account.staff_brand_id == brand:
        raise NothingToDo("unchanged")
    if role is not StaffRole.ADMIN:
        _keep_an_admin(session, account)
    before = {"role": account.staff_role, "brand_id": account.staff_brand_id}
    account.staff_role = role.value
    account.staff_brand_id = brand
    session.flush()
    revoke_other_sessions(session, account, keep=None, reason="privilege_changed")
    record_event(session, account, EventKind.STAFF_ROLE_GRANTED, role=role.value)
    audit.record(
        session,
        actor=actor,
        action="staff.role_changed",
        object_type="account",
        object_id=account.id,
        before=before,
        after={"role": role.value, "brand_id": brand},
    )
    return RoleChange(str(before["role"]), role.value)


def disable(session: Session, actor: Account, account: Account, *, reason: str) -> int:
    """Disable a staff account: it cannot sign in, and its sessions end now (how many)."""
    if account.staff_role is None:
        raise NotAllowed("not-staff")
    if account.id == actor.id:
        raise NotAllowed("self")
    if account.disabled_at is not None:
        raise NothingToDo("disabled")
    _keep_an_admin(session, account)
    account.disabled_at = utcnow()
    session.flush()
    ended = revoke_other_sessions(session, account, keep=None, reason="disabled")
    audit.record(
        session,
        actor=actor,
        action="staff.disabled",
        object_type="account",
        object_id=account.id,
        before={"disabled": False},
        after={"disabled": True, "sessions_ended": ended},
        reason=reason,
    )
    return ended


def enable(session: Session, actor: Account, account: Account) -> None:
    if account.disabled_at is None:
        raise NothingToDo("enabled")
    account.disabled_at = None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="staff.enabled",
        object_type="account",
        object_id=account.id,
        before={"disabled": True},
        after={"disabled": False},
    )


def reset_second_factor(session: Session, actor: Account, account: Account, *, reason: str) -> None:
    """Forget the person's authenticator app, recovery codes and passkeys (a lost phone):
    they enrol again at their next sign-in. Their sessions end now."""
    if account.staff_role is None:
        raise NotAllowed("not-staff")
    codes, passkeys = second_factor.reset_second_steps(session, account, passkeys=True)
    ended = revoke_other_sessions(session, account, keep=None, reason="second_factor_reset")
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="staff.second_factor_reset",
        object_type="account",
        object_id=account.id,
        after={
            "unused_codes_removed": codes,
            "passkeys_removed": passkeys,
            "sessions_ended": ended,
        },
        reason=reason,
    )


def count_staff(session: Session) -> int:
    return int(
        session.scalar(select(func.count(Account.id)).where(Account.staff_role.is_not(None))) or 0
    )
