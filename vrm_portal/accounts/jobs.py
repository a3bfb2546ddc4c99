"""The account jobs whose answer must not reveal whether an address has an account.

The sign-up, forgot-password and change-email pages do the same work for every address:
they check the form and enqueue one of these jobs. The job looks the address up and
decides what to send (a link, or a warning to the owner of a taken address).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l

from vrm_portal.accounts import email_tokens, service
from vrm_portal.accounts.history import ClientInfo
from vrm_portal.accounts.models import Account, TokenPurpose
from vrm_portal.jobs.registry import JobContext, handler
from vrm_portal.jobs.service import enqueue
from vrm_portal.mail import render_email, send_later
from vrm_portal.web import public_url


def client_payload(client: ClientInfo | None) -> dict[str, Any]:
    if client is None:
        return {}
    return {"ip_address": client.ip_address, "user_agent": client.user_agent}


def _client(payload: dict[str, Any]) -> ClientInfo:
    values = payload.get("client") or {}
    return ClientInfo(values.get("ip_address"), values.get("user_agent"))


def _hours(name: str) -> int:
    return int(current_app.config[name].total_seconds() // 3600)


@handler("accounts.registration", retry_delay=timedelta(seconds=20))
def registration(ctx: JobContext) -> dict[str, Any]:
    """Create the account and queue its verification email, or warn the address's owner.

    The account is committed even when the mail server is down: its email is a job of
    its own, retried until it goes, and the token is issued when that email is sent.
    """
    prepared = service.PreparedRegistration(ctx.payload["email"], ctx.payload["password_hash"])
    result = service.complete_registration(
        ctx.session,
        prepared,
        locale=ctx.payload.get("locale"),
        client=_client(ctx.payload),
        verification_ttl=None,
    )
    account = result.account
    if result.created:
        enqueue(ctx.session, "accounts.verification_email", account_id=account.id)
        return {"created": True}
    send_later(
        account.email,
        _l("Someone tried to create an account with your address"),
        "account_exists",
        locale=account.locale,
        time_zone=account.time_zone,
        login_link=public_url("auth.login"),
        reset_link=public_url("auth.forgot_password"),
    )
    return {"created": False}


@handler("accounts.verification_email", retry_delay=timedelta(seconds=20))
def verification_email_job(ctx: JobContext) -> dict[str, Any]:
    """Mail a fresh verification link, unless the address was verified meanwhile."""
    account = ctx.session.get(Account, ctx.account_id) if ctx.account_id else None
    if account is None or account.is_verified:
        return {"sent": False}
    token = email_tokens.issue_email_token(
        ctx.session,
        account,
        TokenPurpose.VERIFY_EMAIL,
        current_app.config["EMAIL_VERIFICATION_TTL"],
    )
    ctx.send(verification_email(account, token.secret, ctx.job_id))
    return {"sent": True}


def verification_email(account: Account, secret: str, message_id: str) -> Any:
    return render_email(
        account.email,
        _l("Confirm your email address"),
        "verify_email",
        locale=account.locale,
        time_zone=account.time_zone,
        message_id=message_id,
        link=public_url("auth.verify_email", token=secret),
        expires_hours=_hours("EMAIL_VERIFICATION_TTL"),
    )


@handler("accounts.password_reset", retry_delay=timedelta(seconds=20))
def password_reset(ctx: JobContext) -> dict[str, Any]:
    """Mail a reset link if the address has an account; nothing otherwise."""
    ttl = current_app.config["PASSWORD_RESET_TTL"]
    token = service.request_password_reset(
        ctx.session, ctx.payload["email"], ttl=ttl, client=_client(ctx.payload)
    )
    if token is None:
        return {"sent": False}
    account = token.record.account
    ctx.send(
        render_email(
            account.email,
            _l("Choose a new password"),
            "reset_password",
            locale=account.locale,
            time_zone=account.time_zone,
            message_id=ctx.job_id,
            link=public_url("auth.reset_password", token=token.secret),
            expires_minutes=int(ttl.total_seconds() // 60),
        )
    )
    return {"sent": True}


@handler("accounts.email_change", retry_delay=timedelta(seconds=20))
def email_change(ctx: JobContext) -> dict[str, Any]:
    """Mail the confirmation link to the new address, or, when another account holds it,
    tell that account's owner that someone tried to use it."""
    account = ctx.session.get(Account, ctx.account_id) if ctx.account_id else None
    if account is None:
        return {"sent": False}  # the account was erased meanwhile
    new_email = ctx.payload["new_email"]
    ttl = current_app.config["EMAIL_CHANGE_TTL"]
    token = service.issue_email_change(ctx.session, account, new_email, ttl=ttl)
    if token is not None:
        ctx.send(
            render_email(
                new_email,
                _l("Confirm your new email address"),
                "confirm_email_change",
                locale=account.locale,
                time_zone=account.time_zone,
                message_id=ctx.job_id,
                link=public_url("account.confirm_email_change", token=token.secret),
                expires_hours=int(ttl.total_seconds() // 3600),
                new_email=new_email,
            )
        )
        return {"taken": False}
    owner = service.find_account_by_email(ctx.session, new_email)
    ctx.send(
        render_email(
            new_email,
            _l("Someone tried to use your address on another account"),
            "email_in_use",
            locale=owner.locale if owner else None,
            time_zone=owner.time_zone if owner else None,
            message_id=ctx.job_id,
        )
    )
    return {"taken": True}
