"""The one place the portal reads the time, always as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime, timespec: str = "auto") -> str:
    """``2026-11-29T10:00:00.123456Z``: how the API and webhooks write a UTC time.

    ``timespec="microseconds"`` always writes the six digits, as the database renders the
    brand API's bulk reads (``db.utc_iso``), so that every time field has one form."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def api_time(moment: datetime) -> str:
    """A time as the brand API and webhooks write it: ``2026-11-29T09:30:00.000000Z``."""
    return rfc3339(moment, timespec="microseconds")
