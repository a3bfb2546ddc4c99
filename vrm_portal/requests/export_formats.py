"""The three export formats, each a generator of ``bytes`` chunks over one ``Export``.

- JSON: one document (``docs/schemas/export-v2.schema.json``), written by hand section
  by section with orjson per row, so it is never held whole.
- CSV: a ZIP with one ``<section>.csv`` per section and a ``README.txt``, written by
  ``zipfile`` into an unseekable pipe (data descriptors, ZIP64 entries) that is emptied
  after each batch of rows.
- HTML: a printable page streamed from ``templates/requests/export_print.html``.

Chunks are about ``CHUNK`` bytes: few enough writes for the server, little memory.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import orjson
from flask import stream_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from vrm_portal.clock import rfc3339
from vrm_portal.requests.export import SECTIONS, Export, Section
from vrm_portal.time_zones import UTC_NAME, force_time_zone
from vrm_portal.web import APP_NAME

FORMAT_NAME = "vrm-portal-export"
#: Bumped on any change that could break a reader (see docs/export.md, "Versioning").
FORMAT_VERSION = 2
CHUNK = 64 * 1024
#: Written first in each CSV file so that spreadsheet programs read it as UTF-8.
UTF8_BOM = "\ufeff".encode()
#: A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

SECTION_TITLES = {
    "profile": _l("Profile"),
    "linked_identities": _l("Linked sign-in providers"),
    "passkeys": _l("Passkeys"),
    "consents": _l("Current consents"),
    "consent_history": _l("Consent history and receipts"),
    "interests": _l("Interests"),
    "intents": _l("Plans"),
    "interactions": _l("Interactions recorded by brands"),
    "access_log": _l("Brands' reads of your data"),
    "data_requests": _l("Data requests"),
    "account_activity": _l("Account activity"),
}

COLUMN_LABELS = {
    "action": _l("Change"),
    "actor": _l("By"),
    "at": _l("When"),
    "body": _l("Details sent by the brand"),
    "brand": _l("Brand"),
    "brands": _l("Brands"),
    "budget_max": _l("Budget up to"),
    "budget_min": _l("Budget from"),
    "cancelled_at": _l("Cancelled"),
    "category": _l("Category"),
    "client_id": _l("API client"),
    "completed_at": _l("Completed"),
    "created_at": _l("Created"),
    "currency": _l("Currency"),
    "detail": _l("Details"),
    "due_at": _l("Due"),
    "email": _l("Email address"),
    "email_seen": _l("Email address at the provider"),
    "email_verified_at": _l("Email address verified"),
    "ends_on": _l("Ends on"),
    "event_id": _l("Event id"),
    "expires_at": _l("Expires"),
    "family_name": _l("Family name"),
    "fields": _l("Fields read"),
    "format": _l("Format"),
    "given_name": _l("Given name"),
    "granted_at": _l("Given"),
    "hash": _l("Event hash"),
    "horizon_months": _l("Within (months)"),
    "interaction_id": _l("Interaction id"),
    "ip_address": _l("IP address"),
    "kind": _l("Kind"),
    "label": _l("Label"),
    "language": _l("Language"),
    "last_used_at": _l("Last used"),
    "locale": _l("Language"),
    "time_zone": _l("Time zone"),
    "attention_emails": _l("Emails about your consents"),
    "method": _l("How"),
    "name": _l("Name"),
    "occurred_at": _l("When"),
    "phone": _l("Phone"),
    "postal_address": _l("Postal address"),
    "prev_hash": _l("Previous event hash"),
    "provider": _l("Provider"),
    "purpose": _l("Purpose"),
    "purpose_version": _l("Text version"),
    "receipt_id": _l("Receipt id"),
    "receipt_jws": _l("Signed receipt (JWS)"),
    "recorded_at": _l("Recorded"),
    "reference": _l("Reference"),
    "requested_at": _l("Requested"),
    "scope": _l("Scope"),
    "seq": _l("Ledger position"),
    "status": _l("Status"),
    "subject": _l("Identifier at the provider"),
    "summary": _l("Summary"),
    "text_hash": _l("Text hash"),
    "title": _l("Title"),
    "topic": _l("Topic"),
    "type": _l("Type"),
    "updated_at": _l("Updated"),
    "user_agent": _l("Device"),
    "version": _l("Version"),
    "withdrawn_at": _l("Withdrawn"),
}


def _header(export: Export, schema_url: str) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "generated_at": rfc3339(export.generated_at),
        "schema": schema_url,
        "locale": export.locale,
    }


# ---- JSON -----------------------------------------------------------------------------


def json_chunks(export: Export, schema_url: str) -> Iterator[bytes]:
    """The export as one JSON document, valid however many rows each section has."""
    buffer = bytearray(orjson.dumps(_header(export, schema_url))[:-1])  # without the "}"
    for section in export.sections:
        buffer += b',"' + section.name.encode() + b'":'
        if section.single:
            buffer += orjson.dumps(next(section.rows, None))
            _drain(section)
            continue
        buffer += b"["
        first = True
        for row in section.rows:
            if not first:
                buffer += b","
            first = False
            buffer += orjson.dumps(row)
            if len(buffer) >= CHUNK:
                yield bytes(buffer)
                buffer.clear()
        buffer += b"]"
    buffer += b"}"
    yield bytes(buffer)


def _drain(section: Section) -> None:
    for _row in section.rows:
        pass


# ---- CSV (ZIP) ------------------------------------------------------------------------


class _Pipe(io.RawIOBase):
    """Write-only and unseekable: ``zipfile`` streams into it, the generator empties it."""

    def __init__(self) -> None:
        super().__init__()
        self._data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._data += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._data)
        self._data.clear()
        return data


def csv_cell(value: Any) -> str:
    """A value as CSV text: nested values as JSON, empty for none, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def zip_chunks(export: Export, schema_url: str) -> Iterator[bytes]:
    """A ZIP of ``<section>.csv`` files (UTF-8 with BOM, header row) and a README.txt."""
    pipe = _Pipe()
    stamp = export.generated_at.timetuple()[:6]
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entry = zipfile.ZipInfo("README.txt", date_time=stamp)
        entry.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(entry, _readme(export, schema_url))
        for section in export.sections:
            entry = zipfile.ZipInfo(f"{section.name}.csv", date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(entry, "w", force_zip64=True) as member:
                member.write(UTF8_BOM)
                text = io.StringIO()
                writer = csv.writer(text)
                writer.writerow(section.columns)
                for row in section.rows:
                    writer.writerow([csv_cell(row[column]) for column in section.columns])
                    if text.tell() >= CHUNK:
                        member.write(text.getvalue().encode())
                        text.seek(0)
                        text.truncate()
                        if chunk := pipe.take():
                            yield chunk
                member.write(text.getvalue().encode())
            if chunk := pipe.take():
                yield chunk
    if chunk := pipe.take():
        yield chunk


def _readme(export: Export, schema_url: str) -> str:
    lines = [
        _(
            "Your data from %(app)s, as of %(when)s.",
            app=APP_NAME,
            when=rfc3339(export.generated_at),
        ),
        "",
        _(
            "One CSV file per section. Each starts with a header row of column names; "
            "the text is UTF-8 with a byte order mark, so that spreadsheet programs show "
            "accents correctly. Times are UTC (RFC 3339). Lists and objects are written as "
            "JSON text. A value that starts with =, +, -, @, a tab or a carriage "
            "return is shown with an apostrophe in front, so that a spreadsheet does not run it "
            "as a formula."
        ),
        "",
        _("The same data as one JSON document, with its JSON Schema: %(url)s", url=schema_url),
        "",
    ]
    for name, columns in SECTIONS.items():
        lines.append(f"{name}.csv — {SECTION_TITLES[name]}: {', '.join(columns)}")
    return "\r\n".join(lines) + "\r\n"


# ---- HTML -----------------------------------------------------------------------------


def is_structured(value: Any) -> bool:
    """An object, or a list of anything but strings: shown as indented JSON."""
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and not all(isinstance(item, str) for item in value)


def html_cell(value: Any) -> str:
    """A value as text on the printable page (a list of strings reads "a, b")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if is_structured(value):
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def html_chunks(export: Export, schema_url: str, *, style_nonce: str) -> Iterator[bytes]:
    """The printable page; its only style is inline, allowed by ``style_nonce`` (CSP).
    Its times are in UTC, as in the other formats, whatever the reader's time zone."""
    with force_time_zone(UTC_NAME):
        yield from _html_pieces(export, schema_url, style_nonce)


def _html_pieces(export: Export, schema_url: str, style_nonce: str) -> Iterator[bytes]:
    pieces = stream_template(
        "requests/export_print.html",
        export=export,
        schema_url=schema_url,
        section_titles=SECTION_TITLES,
        column_labels=COLUMN_LABELS,
        cell=html_cell,
        is_structured=is_structured,
        style_nonce=style_nonce,
    )
    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield "".join(buffer).encode()
            buffer.clear()
            size = 0
    yield "".join(buffer).encode()
