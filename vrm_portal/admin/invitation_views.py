"""The page a new staff member reaches from their invitation email: they choose a
password, then enrol their authenticator app (the staff TOTP enrolment of sign-in)."""

from __future__ import annotations

from flask import Blueprint, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.routing import BuildError

from vrm_portal.accounts.browser_session import begin_second_factor
from vrm_portal.accounts.errors import PasswordRejected
from vrm_portal.accounts.forms import password_problem_message
from vrm_portal.admin import staff
from vrm_portal.admin.forms import AcceptInvitationForm
from vrm_portal.extensions import db, limiter
from vrm_portal.staff_home import HOME_ENDPOINTS
from vrm_portal.web import form_status

bp = Blueprint("staff_invitation", __name__, url_prefix="/staff-invitation")


def _problem_text(reason: str) -> str:
    return str(__problem_text_any(reason))


def __problem_text_any(reason: str) -> object:
    if reason == "used":
        return _("This invitation was used already. Sign in with your email address and password.")
    if reason == "expired":
        return _("This invitation has expired. Ask an administrator to invite you again.")
    return _("This invitation link is not valid. Check that you copied it whole.")


@bp.route("/<token>", methods=["GET", "POST"])
@limiter.limit("30 per hour", methods=["POST"])
def accept(token: str) -> ResponseReturnValue:
    try:
        invitation = staff.invitation_for(db.session, token)
    except staff.InvitationProblem as exc:
        return render_template(
            "admin/invitation.html", form=None, problem=_problem_text(exc.reason), email=None
        ), 410 if exc.reason in ("used", "expired") else 404
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            account = staff.accept(db.session, token, form.password.data)
        except PasswordRejected as exc:
            form.password.errors.append(password_problem_message(exc.reason))
        except staff.InvitationProblem as exc:
            form.form_errors.append(_problem_text(exc.reason))
        else:
            session.pop("_flashes", None)
            try:
                home = url_for(HOME_ENDPOINTS.get(account.staff_role or "", "account.overview"))
            except BuildError:  # that role's console is not built
                home = None
            return begin_second_factor(account, remember=False, next_url=home)
    return render_template(
        "admin/invitation.html", form=form, problem=None, email=invitation.email
    ), form_status(form)
