"""Outgoing email: rendered from templates, sent over SMTP or written to the outbox folder.

A request never sends mail itself: ``send_later`` records a ``mail.send`` job in the
request's transaction, and a worker renders and sends the message once that transaction
has committed (so a link is never mailed for data that was rolled back, and a slow or
broken SMTP server never slows or fails a page). A failed send is retried with back-off,
then the job is marked failed with the error; nothing is dropped silently.
"""

from __future__ import annotations

import functools
import logging
import smtplib
import ssl
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from flask_babel import LazyString, force_locale
from flask_babel import gettext as _translate  # a message id from the payload, not a literal

from vrm_portal.clock import utcnow
from vrm_portal.extensions import db
from vrm_portal.jobs.registry import JobContext, PermanentJobError, handler
from vrm_portal.time_zones import force_time_zone

log = logging.getLogger(__name__)


def compose(to: str, subject: str | LazyString, template: str, **context: Any) -> EmailMessage:
    """Build a plain-text message from ``templates/emails/<template>.txt``."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = str(subject)
    message["Message-ID"] = make_msgid(domain="vrm.invalid")
    message.set_content(render_template(f"emails/{template}.txt", **context))
    return message


def send_later(
    to: str,
    subject: LazyString | str,
    template: str,
    *,
    locale: str | None = None,
    time_zone: str | None = None,
    account_id: int | None = None,
    **context: Any,
) -> str:
    """Queue an email: a ``mail.send`` job, committed with the request, renders it in the
    recipient's ``locale`` and ``time_zone`` (the account's; None for the defaults,
    English and UTC) and sends it. Pass the subject lazily (``lazy_gettext``) so it is
    translated in that locale. Returns the job id (the message's Message-ID)."""
    from vrm_portal.jobs.service import enqueue

    payload = {
        "to": to,
        "subject": subject_payload(subject),
        "template": template,
        "locale": locale,
        "time_zone": time_zone,
        "context": encode_context(context),
    }
    return enqueue(db.session, "mail.send", payload, account_id=account_id)


def subject_payload(subject: LazyString | str) -> dict[str, Any]:
    """A subject as its message id and parameters, to be translated when rendered."""
    if isinstance(subject, LazyString):
        args: tuple[Any, ...] = getattr(subject, "_args", ())
        kwargs: dict[str, Any] = getattr(subject, "_kwargs", {})
        if len(args) == 1 and isinstance(args[0], str):
            return {"msgid": args[0], "params": encode_context(dict(kwargs))}
    return {"text": str(subject)}


def render_subject(subject: dict[str, Any]) -> str:
    if "text" in subject:
        return str(subject["text"])
    params = decode_context(subject.get("params") or {})
    msgid = str(subject["msgid"])
    return str(_translate(msgid, **params) if params else _translate(msgid))


def encode_context(context: dict[str, Any]) -> dict[str, Any]:
    """Template values as JSON; datetimes and dates are tagged so they come back whole."""
    return {key: _encode(value) for key, value in context.items()}


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, LazyString):
        return str(value)
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    return value


def decode_context(context: dict[str, Any]) -> dict[str, Any]:
    return {key: _decode(value) for key, value in context.items()}


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        if set(value) == {"$date"}:
            return date.fromisoformat(value["$date"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def render_email(
    to: str,
    subject: LazyString | str,
    template: str,
    *,
    locale: str | None,
    time_zone: str | None,
    message_id: str,
    **context: Any,
) -> EmailMessage:
    """Render a message now, in a job that decides itself what to send."""
    payload = {
        "to": to,
        "subject": subject_payload(subject),
        "template": template,
        "locale": locale,
        "time_zone": time_zone,
        "context": encode_context(context),
    }
    return render_message(payload, message_id)


def render_message(payload: dict[str, Any], message_id: str) -> EmailMessage:
    """The message a ``mail.send`` job sends, rendered in the payload's locale and time
    zone (UTC for a job queued before messages had one).

    ``PermanentJobError`` when it cannot be built (a stored address with a line break,
    say): no retry would ever send it, so the job fails at once, whichever job it is.
    """
    locale = payload.get("locale")
    context = decode_context(payload.get("context") or {})
    try:
        with (
            force_locale(locale or current_app.config["BABEL_DEFAULT_LOCALE"]),
            force_time_zone(payload.get("time_zone")),
        ):
            subject = render_subject(payload["subject"])
            message = compose(payload["to"], subject, payload["template"], **context)
    except ValueError as exc:  # e.g. a header value with a line break
        raise PermanentJobError(f"cannot build the message: {exc}") from exc
    del message["Message-ID"]
    message["Message-ID"] = f"<{message_id}@vrm.invalid>"
    return message


def deliver(message: EmailMessage) -> None:
    """Send ``message`` with the configured backend. Failures raise: the ``mail.send``
    job counts the attempt and tries again later."""
    config = current_app.config
    if config["MAIL_BACKEND"] == "outbox":
        _write_to_outbox(message, Path(config["MAIL_OUTBOX_DIR"]))
    else:
        _send_smtp(message, config)


def _write_to_outbox(message: EmailMessage, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{stamp}-{message['To'].replace('@', '_at_')}.eml"
    path.write_bytes(bytes(message))
    # The file's name holds the recipient's address: the log names the folder only.
    log.info("email %s (%r) written to %s", _reference(message), message["Subject"], folder)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the system's CA certificates,
    which cost more CPU than sending the message (and none is needed without TLS)."""
    return ssl.create_default_context()


def _send_smtp(message: EmailMessage, config: Any) -> None:
    host, port = config["SMTP_HOST"], config["SMTP_PORT"]
    timeout = config["SMTP_TIMEOUT_SECONDS"]
    smtp: smtplib.SMTP
    if config["SMTP_TLS"] == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if config["SMTP_TLS"] == "starttls":
            smtp.starttls(context=_tls_context())
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
    log.info("email %s (%r) sent", _reference(message), message["Subject"])


def _reference(message: EmailMessage) -> str:
    """What the log says of a message: its ``mail.send`` job id (the Message-ID's local
    part), never the recipient's address."""
    return str(message["Message-ID"] or "").strip("<>").partition("@")[0]


@handler("mail.send", max_attempts=8, retry_delay=timedelta(seconds=30))
def send_job(ctx: JobContext) -> dict[str, Any]:
    """Render and send one queued email (the job id is its Message-ID, so a resend after
    a crash between the SMTP answer and the commit carries the same id)."""
    ctx.send(render_message(ctx.payload, ctx.job_id))
    return {"template": ctx.payload.get("template")}
