"""Pages of social sign-in: start, callback, proving ownership, linked sign-in methods.

"Continue with …" buttons are links to a GET route that only remembers the round trip
in the session and redirects to the provider. A POST form could not do it: the
Content-Security-Policy's ``form-action 'self'`` also covers where a form's response
redirects, and Chromium blocks a redirect to the provider's origin. Widening
``form-action`` to every provider's origin would weaken the policy for every page, while
this GET changes no stored data (the callback checks ``state``, so a forged start cannot
sign anyone in).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from vrm_portal.accounts import errors as account_errors
from vrm_portal.accounts import password_budget
from vrm_portal.accounts.browser_session import begin_second_factor, sign_in
from vrm_portal.accounts.forms import ConfirmForm
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.second_factor import second_step_required
from vrm_portal.accounts.social import client, service
from vrm_portal.accounts.social.errors import (
    IdentityLinkedElsewhere,
    IdentityNotFound,
    InvalidProviderEmail,
    LastSignInMethod,
    PendingLinkRejected,
    SocialSignInFailed,
    UnverifiedEmail,
)
from vrm_portal.accounts.social.forms import ProveWithPasswordForm
from vrm_portal.accounts.social.models import LinkedIdentity, PendingIdentityLink
from vrm_portal.accounts.social.providers import Provider, callback_url
from vrm_portal.clock import utcnow
from vrm_portal.extensions import csrf, db, limiter
from vrm_portal.mail import send_later
from vrm_portal.web import client_info, form_status, public_url, safe_next

log = logging.getLogger(__name__)

bp = Blueprint("social", __name__)

PENDING_KEY = "social_pending_link"
#: Parameters of a provider's answer that the form-post relay passes on.
ANSWER_PARAMS = ("code", "state", "error", "error_description", "iss")

# ---- one place that turns outcomes into pages ------------------------------------------

PROBLEMS: dict[str, tuple[Any, Any, int]] = {
    "cancelled": (
        _l("Sign-in cancelled"),
        _l("You cancelled at %(provider)s, so you are not signed in. Nothing was changed."),
        400,
    ),
    "state_mismatch": (
        _l("This sign-in cannot be completed"),
        _l(
            "We could not match the answer from %(provider)s to a sign-in started in this "
            "browser. It may have expired, been used already, or come from another browser. "
            "Please start again."
        ),
        400,
    ),
    "invalid_token": (
        _l("We could not trust the answer"),
        _l(
            "The answer from %(provider)s did not pass our security checks, so you are not "
            "signed in. Please start again, or sign in another way."
        ),
        400,
    ),
    "provider_error": (
        _l("The provider refused"),
        _l(
            "%(provider)s refused the request or sent an answer we could not use. Please "
            "try again later, or sign in another way."
        ),
        502,
    ),
    "unreachable": (
        _l("The provider cannot be reached"),
        _l(
            "We could not reach %(provider)s; it may be down. Please try again later, or "
            "sign in another way."
        ),
        502,
    ),
    "timeout": (
        _l("The provider is too slow"),
        _l(
            "%(provider)s took too long to answer. Please try again in a moment, or sign in "
            "another way."
        ),
        504,
    ),
    "unverified_email": (
        _l("We cannot use this address"),
        _l(
            "%(provider)s did not confirm that the email address is yours, so we cannot "
            "create or open an account with it. Sign in with your password or create an "
            "account; you can then link %(provider)s from your account settings."
        ),
        403,
    ),
    "invalid_email": (
        _l("This email address cannot be used"),
        _l(
            "%(provider)s gave us an email address we cannot accept: %(why)s No account was "
            "created or linked. Correct the address in your %(provider)s account, or sign in "
            "another way."
        ),
        400,
    ),
    "linked_elsewhere": (
        _l("Already linked to another account"),
        _l(
            "This %(provider)s account is already linked to another account here, so it "
            "cannot also be linked to this one. Unlink it there first."
        ),
        409,
    ),
    "session_changed": (
        _l("This link cannot be completed"),
        _l(
            "You are no longer signed in to the account that started linking "
            "%(provider)s. Sign in and start again from your account settings."
        ),
        403,
    ),
}


#: Why a provider's address was refused (``InvalidProviderEmail.reason``), for the page.
INVALID_EMAIL_REASONS: dict[str, Any] = {
    "hidden_characters": _l(
        "it contains line breaks, invisible or control characters, which an email address "
        "cannot hold."
    ),
    "incomplete_domain": _l(
        "the part after the @ is not a complete domain name (it has no dot, or ends with one)."
    ),
    "too_long": _l("it is longer than 254 characters."),
    "invalid": _l("it is not in the format name@example.com."),
}


def _problem(
    provider: Provider, reason: str, *, linking: bool = False, detail: str = ""
) -> ResponseReturnValue:
    title, message, status = PROBLEMS[reason]
    if reason not in ("cancelled", "unverified_email", "linked_elsewhere"):
        log.info(
            "social sign-in with %s failed: %s",
            provider.name,
            f"{reason} ({detail})" if detail else reason,
        )
    if linking or current_user.is_authenticated:
        back = (url_for("social.methods"), _("Back to your sign-in methods"))
    else:
        back = (url_for("auth.login"), _("Back to sign in"))
    return render_template(
        "social/problem.html",
        title=title,
        message=str(message)
        % {
            "provider": provider.display_name,
            "why": str(INVALID_EMAIL_REASONS.get(detail, INVALID_EMAIL_REASONS["invalid"])),
        },
        back_url=back[0],
        back_label=back[1],
        retry_url=None if linking else url_for("social.start", name=provider.name),
        provider=provider,
    ), status


# ---- helpers ---------------------------------------------------------------------------


def _provider(name: str) -> Provider:
    provider = client.configured_providers().get(name)
    if provider is None:
        abort(404)
    return provider


def _redirect_uri(provider: Provider) -> str:
    return callback_url(str(current_app.config["PUBLIC_BASE_URL"]), provider.name)


def _begin(provider: Provider, intent: dict[str, Any], *, linking: bool) -> ResponseReturnValue:
    try:
        url = client.begin(provider, _redirect_uri(provider), intent)
    except SocialSignInFailed as exc:
        return _problem(provider, exc.reason, linking=linking)
    return redirect(url)


@bp.app_context_processor
def _inject_providers() -> dict[str, Any]:
    return {"social_providers": list(client.configured_providers().values())}


# ---- sign in -------------------------------------------------------------------------


@bp.get("/auth/oauth/<name>/start")
def start(name: str) -> ResponseReturnValue:
    """Send the browser to the provider (a GET: see the module's docstring)."""
    provider = _provider(name)
    intent = {"intent": "sign_in", "next": safe_next(request.args.get("next")) or ""}
    return _begin(provider, intent, linking=False)


@bp.route("/auth/oauth/<name>/callback", methods=["GET", "POST"])
@csrf.exempt  # type: ignore[untyped-decorator]
def callback(name: str) -> ResponseReturnValue:
    provider = _provider(name)
    if request.method == "POST":
        # A form-post answer (Apple) arrives cross-site, without the session cookie
        # (SameSite=Lax): hand it on as a same-site GET, which carries the cookie.
        params = {k: request.form[k] for k in ANSWER_PARAMS if request.form.get(k)}
        return render_template(
            "social/relay.html",
            provider=provider,
            target=url_for("social.callback", name=provider.name) + "?" + urlencode(params),
        )
    try:
        answer = client.finish(provider, request.args)
    except SocialSignInFailed as exc:
        return _problem(provider, exc.reason)
    if answer.intent.get("intent") == "link":
        return _finish_link(provider, answer)
    return _finish_sign_in(provider, answer)


def _finish_sign_in(provider: Provider, answer: client.Answer) -> ResponseReturnValue:
    try:
        outcome = service.sign_in_with_identity(
            db.session,
            answer.identity,
            pending_ttl=current_app.config["SOCIAL_PENDING_LINK_TTL"],
            client=client_info(),
        )
    except UnverifiedEmail:
        return _problem(provider, "unverified_email")
    except InvalidProviderEmail as exc:
        return _problem(provider, "invalid_email", detail=exc.reason)
    next_url = safe_next(answer.intent.get("next"))
    if outcome.pending is not None:
        session[PENDING_KEY] = {"id": outcome.pending.id, "next": next_url or ""}
        return redirect(url_for("social.prove_ownership"))
    assert outcome.account is not None
    return _signed_in(outcome.account, next_url, created=outcome.created)


def _signed_in(account: Account, next_url: str | None, *, created: bool) -> ResponseReturnValue:
    if second_step_required(account):
        return begin_second_factor(account, remember=False, next_url=next_url)
    sign_in(account, remember=False)
    flash(_("Your account has been created.") if created else _("You are signed in."), "success")
    return redirect(next_url or url_for("account.overview"))


def _finish_link(provider: Provider, answer: client.Answer) -> ResponseReturnValue:
    if not current_user.is_authenticated or current_user.account.id != answer.intent.get(
        "account_id"
    ):
        return _problem(provider, "session_changed", linking=True)
    try:
        link = service.link_identity(
            db.session, current_user.account, answer.identity, client=client_info()
        )
    except IdentityLinkedElsewhere:
        return _problem(provider, "linked_elsewhere", linking=True)
    except InvalidProviderEmail as exc:
        return _problem(provider, "invalid_email", linking=True, detail=exc.reason)
    _tell_owner(link)
    flash(
        _("%(provider)s is now linked to your account.", provider=provider.display_name), "success"
    )
    return redirect(url_for("social.methods"))


def _display_name(provider_name: str) -> str:
    provider = client.configured_providers().get(provider_name)
    return provider.display_name if provider else provider_name


def _tell_owner(link: service.Link) -> None:
    """Email the account's owner that an identity was linked: it can now open the account."""
    if link.new:
        _send_notice(link.account, link.identity, linked=True)


def _send_notice(account: Account, identity: LinkedIdentity, *, linked: bool) -> None:
    display = _display_name(identity.provider)
    if linked:
        subject = _l("%(provider)s was linked to your account", provider=display)
    else:
        subject = _l("%(provider)s was unlinked from your account", provider=display)
    send_later(
        account.email,
        subject,
        "social_linked" if linked else "social_unlinked",
        locale=account.locale,
        time_zone=account.time_zone,
        provider=display,
        provider_email=identity.email_seen or "",
        provider_subject=service.displayable(identity.subject),
        when=identity.created_at if linked else utcnow(),
        methods_link=public_url("social.methods"),
        reset_link=public_url("auth.forgot_password"),
    )


# ---- proving that an existing account is yours ---------------------------------------------


def _held_pending_link() -> Any:
    held = session.get(PENDING_KEY)
    if not isinstance(held, dict) or not isinstance(held.get("id"), int):
        raise PendingLinkRejected("unknown")
    return service.get_pending_link(db.session, held["id"]), held


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _pending_link_budget() -> str:
    """The password budget of the account this browser is linking to (shared with sign-in)."""
    try:
        pending, _held = _held_pending_link()
    except PendingLinkRejected:
        return password_budget.client_key()  # no account: the view checks no password
    return password_budget.account_sign_in_key(pending.account)


@bp.route("/auth/oauth/link/confirm", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@password_budget.limited(_pending_link_budget)
def prove_ownership() -> ResponseReturnValue:
    form = ProveWithPasswordForm()
    try:
        pending, held = _held_pending_link()
    except PendingLinkRejected as exc:
        session.pop(PENDING_KEY, None)
        return _pending_problem(exc.reason)
    provider = client.configured_providers().get(pending.provider)
    display = provider.display_name if provider else pending.provider
    if form.validate_on_submit():
        try:
            link = service.confirm_pending_link_with_password(
                db.session, pending.id, form.password.data, client=client_info()
            )
        except account_errors.InvalidCredentials:
            form.password.errors.append(_("This password is not right."))
        except account_errors.EmailNotVerified:
            form.form_errors.append(
                _("This account's address is not confirmed yet: use the emailed link instead.")
            )
        except IdentityLinkedElsewhere:
            session.pop(PENDING_KEY, None)
            if provider is None:
                abort(409)
            return _problem(provider, "linked_elsewhere")
        else:
            session.pop(PENDING_KEY, None)
            _tell_owner(link)
            flash(_("%(provider)s is now linked to your account.", provider=display), "success")
            return _signed_in(link.account, safe_next(held.get("next")), created=False)
    return render_template(
        "social/prove_ownership.html",
        form=form,
        email_form=ConfirmForm(),
        email=pending.email,
        provider_name=display,
        identity=_pending_identity(pending, display),
    ), form_status(form)


def _pending_identity(pending: PendingIdentityLink, display: str) -> dict[str, str]:
    """What the confirmation pages show of the identity about to be linked."""
    return {
        "provider": display,
        "email": pending.email,
        "subject": service.displayable(pending.subject),
        "name": service.displayable(str(pending.detail.get("name") or "")),
    }


@bp.post("/auth/oauth/link/email")
@limiter.limit(lambda: str(current_app.config["EMAIL_RATE_LIMIT"]))
def email_ownership_link() -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        pending, _held = _held_pending_link()
    except PendingLinkRejected as exc:
        return _pending_problem(exc.reason)
    secret = service.issue_pending_link_secret(db.session, pending)
    provider = client.configured_providers().get(pending.provider)
    send_later(
        pending.email,
        _l("Link a sign-in method to your account"),
        "social_link",
        locale=pending.account.locale,
        time_zone=pending.account.time_zone,
        link=public_url("social.confirm_by_email", token=secret),
        provider=provider.display_name if provider else pending.provider,
        expires_minutes=int(current_app.config["SOCIAL_PENDING_LINK_TTL"].total_seconds() // 60),
    )
    return redirect(url_for("auth.check_email", reason="link"))


@bp.route("/auth/oauth/link/email/<token>", methods=["GET", "POST"])
def confirm_by_email(token: str) -> ResponseReturnValue:
    form = ConfirmForm()
    try:
        pending = service.peek_pending_link_by_secret(db.session, token)
        if form.validate_on_submit():
            link = service.confirm_pending_link_with_email(db.session, token, client=client_info())
            held = session.get(PENDING_KEY)
            session.pop(PENDING_KEY, None)
            _tell_owner(link)
            display = _display_name(pending.provider)
            flash(_("%(provider)s is now linked to your account.", provider=display), "success")
            next_url = safe_next(held.get("next")) if isinstance(held, dict) else None
            return _signed_in(link.account, next_url, created=False)
    except PendingLinkRejected as exc:
        return _pending_problem(exc.reason)
    except IdentityLinkedElsewhere:
        abort(409)
    display = _display_name(pending.provider)
    return render_template(
        "social/confirm_by_email.html",
        form=form,
        email=pending.email,
        provider_name=display,
        identity=_pending_identity(pending, display),
    )


def _pending_problem(reason: str) -> ResponseReturnValue:
    messages = {
        "unknown": _("There is no sign-in waiting to be linked. Please start again."),
        "used": _("This sign-in method is already linked. You can sign in with it."),
        "expired": _("This has expired. Please continue with the provider again."),
    }
    return render_template(
        "social/problem.html",
        title=_("This link cannot be used"),
        message=messages.get(reason, messages["unknown"]),
        back_url=url_for("auth.login"),
        back_label=_("Back to sign in"),
        retry_url=None,
        provider=None,
    ), (404 if reason == "unknown" else 410)


# ---- the account's linked sign-in methods --------------------------------------------------


@bp.get("/account/sign-in-methods")
@login_required  # type: ignore[untyped-decorator]
def methods() -> ResponseReturnValue:
    account = current_user.account
    identities = service.list_linked_identities(db.session, account)
    providers = client.configured_providers()
    linked_names = {identity.provider for identity in identities}
    return render_template(
        "social/methods.html",
        identities=identities,
        providers=providers,
        can_unlink=service.can_unlink(account, identities),
        has_password=account.password_hash is not None,
        linkable=[p for p in providers.values() if p.name not in linked_names],
        form=ConfirmForm(),
        after_password_reset=request.args.get("review") == "password-reset",
    )


@bp.get("/account/sign-in-methods/<name>/link")
@login_required  # type: ignore[untyped-decorator]
def link(name: str) -> ResponseReturnValue:
    """Link another provider: off to the provider, bound to the signed-in account."""
    provider = _provider(name)
    intent = {"intent": "link", "account_id": current_user.account.id}
    return _begin(provider, intent, linking=True)


@bp.post("/account/sign-in-methods/<int:identity_id>/unlink")
@login_required  # type: ignore[untyped-decorator]
def unlink(identity_id: int) -> ResponseReturnValue:
    try:
        identity = service.unlink_identity(
            db.session, current_user.account, identity_id, client=client_info()
        )
    except IdentityNotFound:
        abort(404)
    except LastSignInMethod:
        flash(
            _(
                "This is your only way to sign in, so it cannot be unlinked. Link another "
                "provider or set a password (Forgot your password?) first."
            ),
            "warning",
        )
        return redirect(url_for("social.methods"))
    _send_notice(current_user.account, identity, linked=False)
    display = _display_name(identity.provider)
    flash(_("%(provider)s is no longer linked to your account.", provider=display), "success")
    return redirect(url_for("social.methods"))
