"""A constant JSON endpoint for the brand API benchmark (``bench/brand_api.py``).

``GET /api/v1/_bench/constant?bytes=N`` answers a cached JSON body of exactly N bytes,
without touching the database: the same Flask app, middleware and WSGI server as the
real API, so its rate is the ceiling of the stack, the baseline that a consumer lookup of
the same response size is compared with. Registered only when ``BENCH_ENDPOINTS`` is set
(``VRM_BENCH_ENDPOINTS=1``); never in a normal deployment.
"""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, Response, request

bench_bp = Blueprint("bench", __name__, url_prefix="/api/v1/_bench")

#: ``{"padding":""}``: the smallest body with the padding field.
_FRAME = len(b'{"padding":""}')
MAX_BYTES = 1024 * 1024


@lru_cache(maxsize=64)
def constant_body(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (``size`` >= 2)."""
    if size < _FRAME:
        return b"{}" + b" " * (size - 2)
    return b'{"padding":"' + b"x" * (size - _FRAME) + b'"}'


@bench_bp.get("/constant")
def constant() -> Response:
    raw = request.args.get("bytes", "256")
    size = int(raw) if raw.isascii() and raw.isdigit() else -1
    if not 2 <= size <= MAX_BYTES:
        return Response(
            b'{"title":"bytes must be a whole number from 2 to 1048576"}',
            status=400,
            mimetype="application/problem+json",
        )
    return Response(constant_body(size), mimetype="application/json")
