"""Outgoing email: rendered from templates, sent over SMTP or written to the outbox folder.

Messages are handed over only after the request's transaction commits, so a link is
never mailed for data that was rolled back.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from flask_babel import LazyString, force_locale

from vrm_portal.clock import utcnow
from vrm_portal.extensions import db

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
    to: str, subject: LazyString, template: str, *, locale: str | None = None, **context: Any
) -> None:
    """Render now, in the recipient's ``locale`` (subject included: pass it lazily, with
    ``lazy_gettext``), and deliver once the request commits."""
    if locale:
        with force_locale(locale):
            message = compose(to, subject, template, **context)
    else:
        message = compose(to, subject, template, **context)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def deliver_message() -> None:
        with app.app_context():
            deliver(message)

    db.after_commit(deliver_message)


def deliver(message: EmailMessage) -> None:
    """Send ``message`` with the configured backend; failures are logged, not raised."""
    config = current_app.config
    try:
        if config["MAIL_BACKEND"] == "outbox":
            _write_to_outbox(message, Path(config["MAIL_OUTBOX_DIR"]))
        else:
            _send_smtp(message, config)
    except (OSError, smtplib.SMTPException):
        log.exception("could not send email %r to %s", message["Subject"], message["To"])


def _write_to_outbox(message: EmailMessage, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{stamp}-{message['To'].replace('@', '_at_')}.eml"
    path.write_bytes(bytes(message))
    log.info("email %r to %s written to %s", message["Subject"], message["To"], path)


def _send_smtp(message: EmailMessage, config: Any) -> None:
    host, port = config["SMTP_HOST"], config["SMTP_PORT"]
    timeout = config["SMTP_TIMEOUT_SECONDS"]
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if config["SMTP_TLS"] == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if config["SMTP_TLS"] == "starttls":
            smtp.starttls(context=context)
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
    log.info("email %r sent to %s", message["Subject"], message["To"])
