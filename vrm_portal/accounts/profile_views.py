"""The consumer's profile page: the details brands may read under consent."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vrm_portal.accounts import profile
from vrm_portal.accounts.forms import ProfileForm, profile_problem_message
from vrm_portal.extensions import db
from vrm_portal.web import client_info, form_status

bp = Blueprint("profile", __name__, url_prefix="/account")


@bp.before_request
@login_required  # type: ignore[untyped-decorator]
def _require_sign_in() -> None:
    """Every page here is personal: signed-in only."""


@bp.route("/profile", methods=["GET", "POST"])
def edit() -> ResponseReturnValue:
    account = current_user.account
    form = ProfileForm(obj=account)
    if form.validate_on_submit():
        try:
            changed = profile.update_profile(
                db.session,
                account,
                profile.ProfileInput(
                    given_name=form.given_name.data,
                    family_name=form.family_name.data,
                    phone=form.phone.data,
                    postal_address=form.postal_address.data,
                ),
                client_info(),
            )
        except profile.ProfileInvalid as exc:
            form[exc.field].errors.append(profile_problem_message(exc.field, exc.reason))
        else:
            if changed:
                flash(_("Your profile has been saved."), "success")
            else:
                flash(_("You did not change anything, so there was nothing to save."), "info")
            return redirect(url_for("profile.edit"), 303)
    return render_template("account/profile.html", form=form), form_status(form)
