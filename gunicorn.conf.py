"""Gunicorn settings of the portal, read by gunicorn from the directory it starts in
(`make serve`, and the README's production command, start it from the repository's root;
elsewhere pass ``-c /path/to/gunicorn.conf.py``).

Command-line options (``-w``, ``-b``, ``--access-logfile``) still apply. What this file
adds: gunicorn's access and error logs go through the portal's redaction, so that their
lines hold neither the secret of an emailed link (``/password/reset/<token>``, in the
request line or a Referer) nor an email address (``?email=...``). See
vrm_portal/log_redaction.py; the token routes are those of the app the worker loads.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from vrm_portal import log_redaction


class RedactingLogger(Logger):  # type: ignore[misc]
    """Gunicorn's logger with the portal's ``RedactingFilter`` on its two loggers."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        log_redaction.add_filter(self.error_log)
        log_redaction.add_filter(self.access_log)


logger_class = RedactingLogger
