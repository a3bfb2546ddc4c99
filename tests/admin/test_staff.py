"""Staff: invitations by email (single use, 72 h), acceptance then TOTP enrolment, role
changes, disabling (sessions end, sign-in refused), resets, the last admin kept."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
from sqlalchemy import select

from tests.admin.conftest import page_text, post
from tests.conftest import PASSWORD, submit
from tests.mailbox import link_in
from vrm_portal.accounts.models import Account, AuthSession
from vrm_portal.admin.models import StaffInvitation
from vrm_portal.audit.models import StaffAction
from vrm_portal.clock import utcnow
from vrm_portal.jobs.models import Job


def _link(mailbox, address="new-dpo@example.com"):
    """The invitation link's path in the email (the job engine sends it)."""
    return link_in(mailbox.wait_for(address), "/staff-invitation/")


def _invite(admin, email="new-dpo@example.com", role="dpo", brand_id=""):
    return post(
        admin,
        "/admin/staff/invite",
        {"email": email, "role": role, "brand_id": brand_id},
        "/admin/staff/invite",
    )


def test_an_invitation_arrives_by_mail_and_enrols_the_new_staff_member(
    app, as_role, db_session, mailbox, new_browser
):
    admin, _ = as_role("admin")
    assert _invite(admin).status_code == 302
    assert _invite(admin).status_code == 422  # the double submit invites once
    assert db_session.scalars(select(StaffInvitation)).all().__len__() == 1
    path = _link(mailbox)
    invitation = db_session.scalars(select(StaffInvitation)).one()
    assert invitation.token_hash
    assert invitation.token_hash not in path

    browser = new_browser()
    weak = submit(browser, path, {"password": "short", "confirm": "short"})
    assert weak.status_code == 422
    accepted = submit(browser, path, {"password": PASSWORD, "confirm": PASSWORD})
    assert accepted.location == "/login/two-factor/setup"
    setup = page_text(browser.get("/login/two-factor/setup"))
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', setup).group(1).replace(" ", "")
    code = pyotp.TOTP(secret).at(time.time())
    assert submit(browser, "/login/two-factor/setup", {"code": code}).status_code == 302
    account = db_session.scalars(
        select(Account).where(Account.email == "new-dpo@example.com")
    ).one()
    assert account.staff_role == "dpo"
    assert account.has_two_factor
    assert browser.get("/admin/drafts").status_code == 200
    again = new_browser().get(path)
    assert again.status_code == 410
    assert "This invitation was used already." in page_text(again)


def test_an_expired_or_unknown_link_says_so(as_role, db_session, new_browser):
    admin, _ = as_role("admin")
    _invite(admin)
    invitation = db_session.scalars(select(StaffInvitation)).one()
    from vrm_portal.admin.staff import issue_link_secret

    secret = issue_link_secret(db_session, invitation)
    invitation.expires_at = utcnow() - timedelta(minutes=1)
    db_session.commit()
    browser = new_browser()
    assert "has expired" in page_text(browser.get(f"/staff-invitation/{secret}"))
    assert browser.get("/staff-invitation/nothing-like-it").status_code == 404


def test_invite_refuses_bad_input_precisely(as_role, make_account):
    admin, _ = as_role("admin")
    make_account("taken@example.com")
    bad = _invite(admin, email="not-an-address")
    assert "Enter an email address like name@example.com." in page_text(bad)
    taken = _invite(admin, email="taken@example.com")
    assert "This address already has an account" in page_text(taken)
    operator = _invite(admin, email="op@example.com", role="brand-operator")
    assert operator.status_code == 422
    assert "Choose the brand this brand operator manages." in page_text(operator)


def test_disabling_ends_sessions_and_sign_in_says_why(as_role, db_session, client):
    admin, _ = as_role("admin")
    victim_browser, victim = as_role("dpo")
    assert victim_browser.get("/admin/drafts").status_code == 200
    page = f"/admin/staff/{victim.id}"
    empty = post(admin, page + "/disable", {"reason": ""}, page)
    assert "Say why, for the audit trail." in page_text(empty)
    done = post(admin, page + "/disable", {"reason": "left the company"}, page)
    assert done.status_code == 302
    assert victim_browser.get("/admin/drafts").status_code == 404
    live = db_session.scalars(
        select(AuthSession).where(
            AuthSession.account_id == victim.id, AuthSession.revoked_at.is_(None)
        )
    ).all()
    assert live == []
    refused = submit(client, "/login", {"email": victim.email, "password": PASSWORD})
    assert refused.status_code == 422
    assert "This account is disabled." in page_text(refused)
    action = db_session.scalars(
        select(StaffAction).where(StaffAction.action == "staff.disabled")
    ).one()
    assert action.reason == "left the company"


def test_the_last_active_admin_is_kept(as_role, db_session):
    admin, me = as_role("admin")
    page = f"/admin/staff/{me.id}"
    demoted = post(admin, page + "/role", {"role": "dpo", "brand_id": ""}, page)
    assert demoted.status_code == 422
    assert "last active administrator" in page_text(demoted)
    _other_browser, other = as_role("admin", email="other-admin@example.com")
    assert post(admin, f"/admin/staff/{other.id}/disable", {"reason": "r"}, page).status_code == 302
    db_session.expire_all()
    demoted_again = post(admin, page + "/role", {"role": "dpo", "brand_id": ""}, page)
    assert "last active administrator" in page_text(demoted_again)


def test_a_second_factor_reset_forgets_the_app(as_role, db_session):
    admin, _ = as_role("admin")
    _b, dpo = as_role("dpo")
    dpo.totp_secret = pyotp.random_base32()
    dpo.totp_enabled_at = utcnow()
    db_session.commit()
    page = f"/admin/staff/{dpo.id}"
    assert (
        post(admin, page + "/reset-second-factor", {"reason": "lost phone"}, page).status_code
        == 302
    )
    db_session.expire_all()
    assert not db_session.get(Account, dpo.id).has_two_factor


def test_no_page_shows_an_invitation_secret(app, as_role, db_session, mailbox):
    admin, _ = as_role("admin")
    _invite(admin)
    secret = _link(mailbox).rsplit("/", 1)[1]
    for path in ("/admin/staff", "/admin/audit", "/admin/audit/export.csv", "/admin/jobs"):
        assert secret not in page_text(admin.get(path))
    assert db_session.scalar(select(Job.id).where(Job.payload.is_not(None))) is not None


def test_a_role_change_binds_a_brand_operator_and_ends_their_sessions(as_role, db_session):
    from vrm_portal.brands.service import brand_by_slug

    admin, _ = as_role("admin")
    dpo_browser, dpo = as_role("dpo")
    brand = brand_by_slug(db_session, "aurore-automobiles")
    page = f"/admin/staff/{dpo.id}"
    unbound = post(admin, page + "/role", {"role": "brand-operator", "brand_id": ""}, page)
    assert unbound.status_code == 422
    assert "Choose the brand this brand operator manages." in page_text(unbound)
    bound = post(admin, page + "/role", {"role": "brand-operator", "brand_id": str(brand.id)}, page)
    assert bound.status_code == 302
    db_session.expire_all()
    account = db_session.get(Account, dpo.id)
    assert (account.staff_role, account.staff_brand_id) == ("brand-operator", brand.id)
    assert dpo_browser.get("/admin/drafts").status_code == 404
    change = db_session.scalars(
        select(StaffAction).where(StaffAction.action == "staff.role_changed")
    ).one()
    assert change.before == {"role": "dpo", "brand_id": None}
    invited = _invite(admin, email="op@example.com", role="brand-operator", brand_id=str(brand.id))
    assert invited.status_code == 302
    invitation = db_session.scalars(select(StaffInvitation)).one()
    assert invitation.brand_id == brand.id
