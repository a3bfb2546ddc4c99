"""The attention-email setting, and the digest's one-click off link (no sign-in needed)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vrm_portal.extensions import csrf, db
from vrm_portal.reminders import service
from vrm_portal.reminders.forms import AttentionEmailsForm
from vrm_portal.web import form_status

bp = Blueprint("reminders", __name__)


@bp.route("/account/attention-emails", methods=["GET", "POST"])
@login_required  # type: ignore[untyped-decorator]
def settings() -> ResponseReturnValue:
    account = current_user.account
    if account.is_staff:
        abort(404)  # staff accounts give no consents here, so get no digest
    form = AttentionEmailsForm(obj=account)
    if form.validate_on_submit():
        wanted = bool(form.attention_emails.data)
        if not service.set_attention_emails(db.session, account, wanted):
            flash(_("You did not change anything, so there was nothing to save."), "info")
        elif wanted:
            flash(_("Saved: we will email you when a consent needs your attention."), "success")
        else:
            flash(
                _(
                    "Saved: we will no longer email you when a consent needs your attention. "
                    "Your account page still shows it."
                ),
                "success",
            )
        return redirect(url_for(".settings"), 303)
    return render_template("reminders/settings.html", form=form), form_status(form)


@bp.route("/attention-emails/off/<token>", methods=["GET", "POST"])
# CSRF exemption, for this route only: the one-click POST a mail client sends on its own
# (RFC 8058, List-Unsubscribe-Post) cannot carry a CSRF token. The signed token in the URL
# is the proof instead, and all the POST can do is turn these emails off.
@csrf.exempt  # type: ignore[untyped-decorator]
def off(token: str) -> ResponseReturnValue:
    """GET shows one button and changes nothing (mail scanners follow links); POST turns
    the digest off, signed in or not."""
    try:
        account = service.account_for_off_token(db.session, current_app.config["SECRET_KEY"], token)
    except service.OffLinkInvalid:
        return render_template("reminders/off.html", problem=True, done=False), 404
    if request.method == "POST":
        service.set_attention_emails(db.session, account, False)
        return render_template("reminders/off.html", problem=False, done=True)
    return render_template("reminders/off.html", problem=False, done=False)
