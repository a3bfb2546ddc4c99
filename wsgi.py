"""WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi``.

A missing or unusable setting stops the process with one line on stderr, ``error: <what
to fix>``, instead of a traceback: exit status 2 for ``flask --app wsgi ...``, and 4 under
gunicorn, whose master then stops ("App failed to load") rather than starting workers
again and again.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from config import ConfigError
from vrm_portal import create_app

#: Gunicorn's ``Arbiter.APP_LOAD_ERROR``: a worker exiting with it halts the master.
GUNICORN_APP_LOAD_ERROR = 4


def refuse_to_start(error: ConfigError) -> NoReturn:
    print(f"error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(GUNICORN_APP_LOAD_ERROR if "gunicorn.arbiter" in sys.modules else 2)


try:
    app = create_app()
except ConfigError as error:
    refuse_to_start(error)
