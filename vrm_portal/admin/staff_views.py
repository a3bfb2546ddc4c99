"""Console pages of the staff: invitations, roles, disabling, second-factor resets."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from vrm_portal.accounts.errors import InvalidEmail
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.admin import staff
from vrm_portal.admin.blueprint import bp, staff_member
from vrm_portal.admin.errors import AlreadyExists, NotAllowed, NothingToDo
from vrm_portal.admin.forms import EmptyForm, InviteForm, ReasonForm, RoleFields
from vrm_portal.admin.models import StaffInvitation
from vrm_portal.brands.models import Brand
from vrm_portal.extensions import db
from vrm_portal.web import form_status


def _with_brands(form: RoleFields) -> RoleFields:
    brands = db.session.scalars(select(Brand).order_by(Brand.name)).all()
    form.brand_id.choices = [SelectChoice("", _("(none)"))] + [
        SelectChoice(str(b.id), b.name) for b in brands
    ]
    return form


def _brand_choice(form: RoleFields) -> int | None:
    raw = form.brand_id.data or ""
    return int(raw) if raw.isdigit() else None


def _refusal(code: str) -> str:
    return str(__refusal_any(code))


def __refusal_any(code: str) -> object:
    return {
        "last-admin": _("This is the last active administrator: appoint another one first."),
        "self": _("You cannot disable your own account."),
        "brand-required": _("Choose the brand this brand operator manages."),
        "not-staff": _("This account is not a staff member."),
        "unchanged": _("Nothing changed."),
        "disabled": _("This account is disabled already."),
        "enabled": _("This account is enabled already."),
    }.get(code, code)


def _account(account_id: int) -> Account:
    account = db.session.get(Account, account_id)
    if account is None or account.staff_role is None:
        abort(404)
    return account


@bp.get("/staff")
def staff_list() -> ResponseReturnValue:
    return render_template(
        "admin/staff.html",
        members=staff.staff_members(db.session),
        invitations=staff.open_invitations(db.session),
        brands={b.id: b for b in db.session.scalars(select(Brand))},
        form=EmptyForm(),
    )


@bp.route("/staff/invite", methods=["GET", "POST"])
def invite() -> ResponseReturnValue:
    form = _with_brands(InviteForm())
    if form.validate_on_submit():
        role = StaffRole(form.role.data)
        try:
            staff.invite(db.session, staff_member(), form.email.data, role, _brand_choice(form))
        except InvalidEmail:
            form.email.errors.append(_("Enter an email address like name@example.com."))
        except AlreadyExists:
            form.email.errors.append(
                _("This address already has an account: change its role on the staff page.")
            )
        except NothingToDo:
            form.email.errors.append(
                _("An invitation to this address is still open: withdraw it first to send another.")
            )
        except NotAllowed as exc:
            form.brand_id.errors.append(_refusal(str(exc)))
        else:
            flash(_("Invitation sent to %(email)s.", email=form.email.data.strip()), "success")
            return redirect(url_for("admin.staff_list"))
    return render_template("admin/invite.html", form=form), form_status(form)


@bp.post("/staff/invitations/<int:invitation_id>/withdraw")
def withdraw_invitation(invitation_id: int) -> ResponseReturnValue:
    invitation = db.session.get(StaffInvitation, invitation_id)
    if invitation is None:
        abort(404)
    try:
        staff.withdraw_invitation(db.session, staff_member(), invitation)
    except NothingToDo:
        flash(_("This invitation was used or withdrawn already."), "info")
    else:
        flash(_("Invitation withdrawn: its link no longer works."), "success")
    return redirect(url_for("admin.staff_list"))


def _member_page(
    account: Account, role_form: RoleFields, reason_form: ReasonForm
) -> ResponseReturnValue:
    status = max(form_status(role_form), form_status(reason_form))
    return render_template(
        "admin/member.html",
        member=account,
        role_form=role_form,
        reason_form=reason_form,
        enable_form=EmptyForm(),
        brand=db.session.get(Brand, account.staff_brand_id) if account.staff_brand_id else None,
        is_self=account.id == staff_member().id,
    ), status


@bp.get("/staff/<int:account_id>")
def member(account_id: int) -> ResponseReturnValue:
    account = _account(account_id)
    role_form = _with_brands(
        RoleFields(role=account.staff_role, brand_id=str(account.staff_brand_id or ""))
    )
    return _member_page(account, role_form, ReasonForm())


@bp.post("/staff/<int:account_id>/role")
def change_role(account_id: int) -> ResponseReturnValue:
    account = _account(account_id)
    form = _with_brands(RoleFields())
    if form.validate_on_submit():
        try:
            staff.change_role(
                db.session, staff_member(), account, StaffRole(form.role.data), _brand_choice(form)
            )
        except NothingToDo:
            flash(_("Nothing changed."), "info")
            return redirect(url_for("admin.member", account_id=account.id))
        except NotAllowed as exc:
            target = form.brand_id if str(exc) == "brand-required" else form.role
            target.errors.append(_refusal(str(exc)))
        else:
            flash(_("Role changed; their sessions have ended."), "success")
            return redirect(url_for("admin.member", account_id=account.id))
    return _member_page(account, form, ReasonForm())


@bp.post("/staff/<int:account_id>/disable")
def disable(account_id: int) -> ResponseReturnValue:
    account = _account(account_id)
    form = ReasonForm()
    if form.validate_on_submit():
        try:
            ended = staff.disable(db.session, staff_member(), account, reason=form.reason.data)
        except NothingToDo as exc:
            flash(_refusal(str(exc)), "info")
            return redirect(url_for("admin.member", account_id=account.id))
        except NotAllowed as exc:
            form.form_errors.append(_refusal(str(exc)))
        else:
            flash(_("Account disabled; %(count)s session(s) ended.", count=ended), "success")
            return redirect(url_for("admin.member", account_id=account.id))
    role_form = _with_brands(
        RoleFields(role=account.staff_role, brand_id=str(account.staff_brand_id or ""))
    )
    return _member_page(account, role_form, form)


@bp.post("/staff/<int:account_id>/enable")
def enable(account_id: int) -> ResponseReturnValue:
    account = _account(account_id)
    if EmptyForm().validate_on_submit():
        try:
            staff.enable(db.session, staff_member(), account)
        except NothingToDo as exc:
            flash(_refusal(str(exc)), "info")
        else:
            flash(_("Account enabled: they can sign in again."), "success")
    return redirect(url_for("admin.member", account_id=account.id))


@bp.post("/staff/<int:account_id>/reset-second-factor")
def reset_second_factor(account_id: int) -> ResponseReturnValue:
    account = _account(account_id)
    form = ReasonForm()
    if form.validate_on_submit():
        try:
            staff.reset_second_factor(db.session, staff_member(), account, reason=form.reason.data)
        except NotAllowed as exc:
            form.form_errors.append(_refusal(str(exc)))
        else:
            flash(
                _(
                    "Second factor reset: they set up their authenticator app again at "
                    "their next sign-in."
                ),
                "success",
            )
            return redirect(url_for("admin.member", account_id=account.id))
    role_form = _with_brands(
        RoleFields(role=account.staff_role, brand_id=str(account.staff_brand_id or ""))
    )
    return _member_page(account, role_form, form)
