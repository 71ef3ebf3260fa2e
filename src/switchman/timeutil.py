"""UTC time helpers: one clock, one wire format."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    """RFC 3339 / ISO-8601 in UTC with milliseconds and the `Z` offset designator, as Unleash writes dates."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
