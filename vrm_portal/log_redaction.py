"""No secret link and no email address in a log line.

The links the portal emails (verification, password reset, email change, consent
confirmation, attention-email opt-out, proving an account to link a provider) carry their
secret in the path, so any log that prints a path (werkzeug's request log, gunicorn's
access log, an error's "unhandled error on GET /password/reset/...") would let whoever
reads the logs use them; and an email address is personal data the logs do not need.

``redact`` replaces the path segment of every route with a ``<token>`` parameter (read
from the app's URL map, so a new such route is covered without a change here), the
values of OAuth's ``code`` and ``state`` (and of other secret parameters) in query
strings, and every email-like string (plain, or ``%40``-encoded) with placeholders.

``install`` (called by ``create_app``) applies it to every record the process logs,
whatever its logger or handler: through the log record factory, because a filter on a
logger sees neither the records of its children (``vrm_portal.mail``'s reach the root
logger's handlers without passing the root logger's filters) nor those of a handler
added later (gunicorn's, pytest's). ``RedactingFilter`` also goes on the root, app and
werkzeug loggers, and gunicorn.conf.py puts it on gunicorn's own loggers.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from flask import Flask
from werkzeug.routing import Map

TOKEN_PLACEHOLDER = "[redacted]"
EMAIL_PLACEHOLDER = "[email]"
#: The URL parameter that holds a secret in a route (``/password/reset/<token>``).
TOKEN_ARGUMENT = "token"
#: Query parameters whose values are secrets wherever they appear.
SECRET_PARAMETERS = (
    "token",
    "code",
    "state",
    "access_token",
    "id_token",
    "refresh_token",
    "client_secret",
)

#: Characters that end a path segment in a request line, a URL, JSON, a repr or a header.
_SEGMENT = r"[^/?#&\s\"'<>\\]+"
#: An address's local part and domain labels: anything but separators, so that Unicode
#: letters and combining marks are caught too. ``=``, ``/``, ``?`` and ``&`` are left out
#: so that "email=x@example.com" in a query string keeps its parameter name.
_LOCAL = r"[^\s@<>()\[\]{}\\,;:\"'`/=?&|]"
#: The same, percent-encoded (``x%2By%40example.com``): any escape but ``%40``.
_ENCODED_LOCAL = r"(?:[^\s@<>()\[\]{}\\,;:\"'`/=?&|%]|%(?!40)[0-9a-f]{2})"
_LABEL = r"[^\s@<>()\[\]{}\\,;:\"'`/=?&|.%]+"
#: Starts only where a run of address characters starts, and never backtracks into the
#: local part (possessive quantifiers): linear in the length of the line, however long.
EMAIL_PATTERN = re.compile(
    rf"(?<!{_LOCAL})(?:{_LOCAL}++@|{_ENCODED_LOCAL}++%40){_LABEL}(?:\.{_LABEL})*",
    re.IGNORECASE,
)
SECRET_PARAMETER_PATTERN = re.compile(
    rf"(?<=[?&;])((?:{'|'.join(SECRET_PARAMETERS)})=)[^&#\s\"'<>]+", re.IGNORECASE
)
_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")

_lock = threading.Lock()
_token_rules: set[str] = set()
_token_patterns: tuple[re.Pattern[str], ...] = ()


def token_route_pattern(rule: str) -> re.Pattern[str] | None:
    """A pattern matching ``rule``'s URLs, with group ``token`` on the secret segment (None
    when the rule has no ``<token>``)."""
    parts: list[str] = []
    position = 0
    has_token = False
    for variable in _VARIABLE.finditer(rule):
        parts.append(re.escape(rule[position : variable.start()]))
        if variable.group(1) == TOKEN_ARGUMENT:
            parts.append(f"(?P<token>{_SEGMENT})")
            has_token = True
        else:
            parts.append(_SEGMENT)
        position = variable.end()
    parts.append(re.escape(rule[position:]))
    return re.compile("".join(parts)) if has_token else None


def token_rules(url_map: Map) -> list[str]:
    """The rules of ``url_map`` whose URLs carry a secret: every one with ``<token>``."""
    return sorted(rule.rule for rule in url_map.iter_rules() if TOKEN_ARGUMENT in rule.arguments)


def add_token_routes(rules: Iterable[str]) -> None:
    """Redact the secret segment of these rules' URLs from now on (apps add theirs)."""
    global _token_patterns
    with _lock:
        _token_rules.update(rules)
        patterns = (token_route_pattern(rule) for rule in sorted(_token_rules))
        _token_patterns = tuple(pattern for pattern in patterns if pattern is not None)


def _blank_token(match: re.Match[str]) -> str:
    start, end = match.span("token")
    whole = match.group(0)
    offset = match.start()
    return whole[: start - offset] + TOKEN_PLACEHOLDER + whole[end - offset :]


def redact(text: str) -> str:
    """``text`` without the secrets of token links and query strings, and without email
    addresses."""
    for pattern in _token_patterns:
        text = pattern.sub(_blank_token, text)
    text = SECRET_PARAMETER_PATTERN.sub(rf"\g<1>{TOKEN_PLACEHOLDER}", text)
    if "@" in text or "%40" in text:
        text = EMAIL_PATTERN.sub(EMAIL_PLACEHOLDER, text)
    return text


_FORMATTER = logging.Formatter()


def redact_record(record: logging.LogRecord) -> None:
    """Replace ``record``'s message (formatted with its arguments), traceback and stack
    with their redacted text. Idempotent."""
    if getattr(record, "vrm_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep what it said, redacted
        message = f"{record.msg!s} {record.args!r}"
    record.msg = redact(message)
    record.args = ()
    if record.exc_info and not record.exc_text:
        record.exc_text = _FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record.__dict__["vrm_redacted"] = True


class RedactingFilter(logging.Filter):
    """Redacts each record it sees (``redact_record``) and lets it through."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


class _RedactingRecordFactory:
    """The log record factory, wrapped so that every record is redacted when it is made."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.wrapped(*args, **kwargs)
        redact_record(record)
        return record


def install(app: Flask) -> None:
    """Redact every log record of this process from now on (idempotent): the record
    factory, and a ``RedactingFilter`` on the root, werkzeug and ``app``'s loggers. The
    app's token routes are added by ``redact_token_routes`` once its blueprints are in."""
    with _lock:
        if not isinstance(logging.getLogRecordFactory(), _RedactingRecordFactory):
            logging.setLogRecordFactory(_RedactingRecordFactory(logging.getLogRecordFactory()))
    for logger in (logging.getLogger(), logging.getLogger("werkzeug"), app.logger):
        add_filter(logger)


def redact_token_routes(url_map: Map) -> None:
    """Redact the secret segment of ``url_map``'s token routes (``token_rules``)."""
    add_token_routes(token_rules(url_map))


def add_filter(logger: logging.Logger) -> None:
    """Put a ``RedactingFilter`` on ``logger`` unless it has one."""
    if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
        logger.addFilter(RedactingFilter())
