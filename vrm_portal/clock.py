"""The one place the portal reads the time, always as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2026-11-29T10:00:00.123456Z``: how the API and webhooks write a UTC time."""
    return moment.isoformat().replace("+00:00", "Z")
