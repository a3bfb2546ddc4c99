"""Download my data: the export page, its three formats, and the export's JSON Schema."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required

from vrm_portal.clock import utcnow
from vrm_portal.extensions import db, limiter
from vrm_portal.requests import export_formats
from vrm_portal.requests.export import Export, begin_snapshot, build_export, section_counts
from vrm_portal.requests.models import ExportFormat
from vrm_portal.requests.service import record_export, requests_of
from vrm_portal.web import public_url

bp = Blueprint("export", __name__, url_prefix="/my-data/export")

#: Kept in the repository beside the documentation, served as they are: each version's
#: schema stays published, so that files made before a new version stay checkable.
SCHEMA_FILES = {
    version: Path("docs") / "schemas" / f"export-v{version}.schema.json" for version in (1, 2)
}
#: Downloads per account: each one reads the consumer's whole history.
DOWNLOAD_LIMIT = "10 per minute;60 per hour"
#: The printable page's own policy: nothing to fetch, its inline style allowed by nonce.
PRINT_POLICY = (
    "default-src 'none'; style-src 'nonce-{nonce}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_EXTENSIONS = {ExportFormat.JSON: "json", ExportFormat.CSV: "zip", ExportFormat.HTML: "html"}
_MEDIA_TYPES = {
    ExportFormat.JSON: "application/json",
    ExportFormat.CSV: "application/zip",
    ExportFormat.HTML: "text/html",
}


def _account_key() -> str:
    account = getattr(current_user, "account", None)
    return f"export-account-{account.id}" if account is not None else get_remote_address()


@functools.cache
def _schema_bytes(root: str, version: int) -> bytes:
    return (Path(root).parent / SCHEMA_FILES[version]).read_bytes()


def _schema_response(version: int) -> ResponseReturnValue:
    body = _schema_bytes(current_app.root_path, version)
    response = Response(body, mimetype="application/schema+json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/export-v<int:version>.schema.json")
def versioned_schema(version: int) -> ResponseReturnValue:
    """The JSON Schema of one version of the JSON export: public, so anyone can check an
    export; each export names the one it follows."""
    if version not in SCHEMA_FILES:
        abort(404)
    return _schema_response(version)


@bp.get("/schema.json")
def schema() -> ResponseReturnValue:
    """Version 1's schema, at the address that the files of version 1 name."""
    return _schema_response(1)


def _schema_url() -> str:
    return public_url("export.versioned_schema", version=export_formats.FORMAT_VERSION)


@bp.get("/")
@login_required  # type: ignore[untyped-decorator]
def page() -> ResponseReturnValue:
    account = current_user.account
    recent, total = requests_of(db.session, account.id, per_page=5)
    return render_template(
        "requests/export.html",
        counts=section_counts(db.session, account),
        recent_requests=recent,
        total_requests=total,
        titles=export_formats.SECTION_TITLES,
        schema_url=_schema_url(),
    )


@bp.post("/<name>")
@limiter.limit(DOWNLOAD_LIMIT, key_func=_account_key)
@login_required  # type: ignore[untyped-decorator]
def download(name: str) -> ResponseReturnValue:
    """Stream the export in format ``name``, once its download is recorded (committed).

    ``inline=1`` shows the printable page in the browser instead of saving it.
    """
    try:
        export_format = ExportFormat(name)
    except ValueError:
        abort(404)
    account = current_user.account
    now = utcnow()
    record_export(db.session, account, export_format, now)
    db.commit()

    locale = str(get_locale() or "en")
    schema_url = _schema_url()
    nonce = secrets.token_urlsafe(16)
    write: Callable[[Export], Iterator[bytes]]
    if export_format is ExportFormat.JSON:
        write = functools.partial(export_formats.json_chunks, schema_url=schema_url)
    elif export_format is ExportFormat.CSV:
        write = functools.partial(export_formats.zip_chunks, schema_url=schema_url)
    else:
        write = functools.partial(
            export_formats.html_chunks, schema_url=schema_url, style_nonce=nonce
        )

    def stream() -> Iterator[bytes]:
        # Runs after the request's own commit: the read gets a transaction of its own.
        session = db.session
        begin_snapshot(session)
        yield from write(build_export(session, account, now, locale))

    response = Response(stream_with_context(stream()), mimetype=_MEDIA_TYPES[export_format])
    filename = f"vrm-portal-export-{now:%Y-%m-%d}.{_EXTENSIONS[export_format]}"
    inline = export_format is ExportFormat.HTML and request.form.get("inline") == "1"
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    if export_format is ExportFormat.HTML:
        response.headers["Content-Security-Policy"] = PRINT_POLICY.format(nonce=nonce)
    return response
