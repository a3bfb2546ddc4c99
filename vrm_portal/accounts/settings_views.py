"""The signed-in consumer's account pages: overview, password, email, sessions, activity,
time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from vrm_portal.accounts import (
    auth_sessions,
    email_tokens,
    errors,
    history,
    password_budget,
    service,
)
from vrm_portal.accounts.browser_session import sign_in
from vrm_portal.accounts.devices import describe_device
from vrm_portal.accounts.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    ConfirmForm,
    TimeZoneForm,
    password_problem_message,
)
from vrm_portal.accounts.messages import event_label, token_problem, token_problem_status
from vrm_portal.accounts.models import AccountEvent, TokenPurpose
from vrm_portal.accounts.time_zone import UnknownTimeZone, set_time_zone
from vrm_portal.clock import utcnow
from vrm_portal.extensions import db, limiter
from vrm_portal.jobs.service import enqueue
from vrm_portal.mail import send_later
from vrm_portal.reminders.service import attention_panel
from vrm_portal.time_zones import (
    UTC_NAME,
    account_time_zone,
    browser_time_zone,
    format_moment,
    zone_choices,
    zone_label,
)
from vrm_portal.web import client_info, form_status, public_url

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.before_request
@login_required  # type: ignore[untyped-decorator]
def _require_sign_in() -> None:
    """Every page here is personal: signed-in only."""


def _reauth_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


@dataclass(frozen=True)
class EventView:
    label: str
    created_at: datetime
    ip_address: str | None
    user_agent: str | None


def _event_views(events: list[AccountEvent]) -> list[EventView]:
    return [
        EventView(event_label(e.kind), e.created_at, e.ip_address, e.user_agent) for e in events
    ]


@dataclass(frozen=True)
class SessionView:
    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip_address: str | None
    remember: bool
    is_current: bool
    #: The browser and device in plain words ("Firefox 133 on Windows"), when recognised.
    device: str | None = None


@bp.get("/")
def overview() -> ResponseReturnValue:
    account = current_user.account
    events, _more = history.list_events(db.session, account, page=1, per_page=5)
    return render_template(
        "account/overview.html",
        account=account,
        recent_events=_event_views(events),
        attention=attention_panel(
            db.session, account, now=utcnow(), days=current_app.config["REMINDER_DAYS"]
        ),
    )


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(_reauth_limit, methods=["POST"])
@password_budget.limited(password_budget.signed_in_account_key)
def change_password() -> ResponseReturnValue:
    form = ChangePasswordForm()
    account = current_user.account
    if form.validate_on_submit():
        try:
            ended = service.change_password(
                db.session,
                account,
                form.current_password.data,
                form.new_password.data,
                keep=None,
                client=client_info(),
            )
        except errors.WrongCurrentPassword:
            form.current_password.errors.append(_("Your current password is not right."))
        except errors.PasswordRejected as exc:
            form.new_password.errors.append(password_problem_message(exc.reason))
        else:
            sign_in(account, remember=current_user.auth_session.remember)
            send_later(
                account.email,
                _l("Your password was changed"),
                "password_changed",
                locale=account.locale,
                time_zone=account.time_zone,
                when=account.password_changed_at,
                reset_link=public_url("auth.forgot_password"),
            )
            flash(_("Your password has been changed."), "success")
            if ended > 1:
                flash(_("Your other sessions have been signed out."), "info")
            return redirect(url_for("account.overview"))
    return render_template("account/change_password.html", form=form), form_status(form)


@bp.route("/email", methods=["GET", "POST"])
@limiter.limit(_reauth_limit, methods=["POST"])
@password_budget.limited(password_budget.signed_in_account_key)
def change_email() -> ResponseReturnValue:
    form = ChangeEmailForm()
    account = current_user.account
    if form.validate_on_submit():
        try:
            new_email = service.check_email_change(
                db.session,
                account,
                form.current_password.data,
                form.new_email.data,
                client=client_info(),
            )
        except errors.WrongCurrentPassword:
            form.current_password.errors.append(_("Your current password is not right."))
        except errors.InvalidEmail:
            form.new_email.errors.append(_("This is already your email address."))
        else:
            # Whether the address is taken is decided by the job, not by this answer.
            enqueue(
                db.session, "accounts.email_change", {"new_email": new_email}, account_id=account.id
            )
            return redirect(url_for("auth.check_email", reason="change"))
    return render_template("account/change_email.html", form=form, account=account), form_status(
        form
    )


@bp.route("/email/confirm/<token>", methods=["GET", "POST"])
def confirm_email_change(token: str) -> ResponseReturnValue:
    form = ConfirmForm()
    account = current_user.account
    try:
        record = email_tokens.peek_email_token(
            db.session, token, TokenPurpose.CHANGE_EMAIL, signed_in=account
        )
        if form.validate_on_submit():
            change = service.confirm_email_change(
                db.session, token, signed_in=account, keep=None, client=client_info()
            )
            # Every session ended, this one included: it goes on in a new one.
            sign_in(account, remember=current_user.auth_session.remember)
            send_later(
                change.old_email,
                _l("Your email address was changed"),
                "email_changed_notice",
                locale=account.locale,
                time_zone=account.time_zone,
                new_email=account.email,
                when=account.updated_at,
            )
            flash(_("Your email address is now %(email)s.", email=account.email), "success")
            if change.sessions_ended > 1:
                flash(_("Your other sessions have been signed out."), "info")
            return redirect(url_for("account.overview"))
    except errors.TokenRejected as exc:
        return render_template(
            "account/confirm_email_change.html",
            form=form,
            new_email=None,
            problem=token_problem(exc.reason),
        ), token_problem_status(exc.reason)
    return render_template(
        "account/confirm_email_change.html", form=form, new_email=record.email, problem=None
    )


@bp.get("/sessions")
def sessions() -> ResponseReturnValue:
    current = current_user.auth_session
    rows = [
        SessionView(
            s.id,
            s.created_at,
            s.last_seen_at,
            s.expires_at,
            s.user_agent,
            s.ip_address,
            s.remember,
            s.id == current.id,
            describe_device(s.user_agent),
        )
        for s in auth_sessions.list_active_sessions(db.session, current_user.account)
    ]
    return render_template("account/sessions.html", sessions=rows, form=ConfirmForm())


@bp.post("/sessions/<int:session_id>/revoke")
def revoke_session(session_id: int) -> ResponseReturnValue:
    if session_id == current_user.auth_session.id:
        flash(_("To end this session, use Sign out."), "warning")
        return redirect(url_for("account.sessions"))
    try:
        auth_sessions.revoke_session(
            db.session, current_user.account, session_id, client=client_info()
        )
    except errors.SessionNotFound:
        abort(404)
    flash(_("That session has been signed out."), "success")
    return redirect(url_for("account.sessions"))


@bp.post("/sessions/revoke-others")
def revoke_other_sessions() -> ResponseReturnValue:
    count = auth_sessions.revoke_other_sessions(
        db.session, current_user.account, keep=current_user.auth_session, client=client_info()
    )
    if count:
        flash(_("All your other sessions have been signed out."), "success")
    else:
        flash(_("There was no other session to sign out."), "info")
    return redirect(url_for("account.sessions"))


@bp.get("/activity")
def activity() -> ResponseReturnValue:
    page = request.args.get("page", "1")
    # isascii(): str.isdigit() also accepts digits int() refuses, such as "²".
    wanted = int(page) if page.isascii() and page.isdigit() and len(page) <= 5 else 1
    number = wanted if wanted > 0 else 1
    events, has_next = history.list_events(db.session, current_user.account, page=number)
    return render_template(
        "account/activity.html",
        events=_event_views(events),
        page=number,
        has_prev=number > 1,
        has_next=has_next,
        prev_url=url_for("account.activity", page=number - 1) if number > 1 else None,
        next_url=url_for("account.activity", page=number + 1) if has_next else None,
    )


@bp.route("/time-zone", methods=["GET", "POST"])
def time_zone() -> ResponseReturnValue:
    account = current_user.account
    chosen = account_time_zone()
    reported = browser_time_zone()
    form = TimeZoneForm()
    form.time_zone.choices = zone_choices(keep=chosen or reported)
    if form.validate_on_submit():
        try:
            changed = set_time_zone(db.session, account, form.time_zone.data, client_info())
        except UnknownTimeZone:
            form.time_zone.errors.append(
                _("This is not a time zone we know. Choose one from the list.")
            )
        else:
            if changed:
                zone = zone_label(account.time_zone)
                flash(_("Saved: times are now shown in %(zone)s.", zone=zone), "success")
            else:
                flash(_("You did not change anything, so there was nothing to save."), "info")
            return redirect(url_for(".time_zone"), 303)
    elif not form.is_submitted():
        form.time_zone.data = chosen or reported or UTC_NAME
    return render_template(
        "account/time_zone.html",
        form=form,
        chosen=chosen,
        reported=reported,
        now=format_moment(utcnow()),
    ), form_status(form)
