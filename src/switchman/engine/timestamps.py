"""Parsing of the date-times that `DATE_AFTER` / `DATE_BEFORE` filters compare.

Accepted: RFC 3339 date-times (`2024-03-21T10:15:30.123Z`, `2023-12-27T13:37:00+01:00`) and the
common ISO-8601 relaxations of them: `t` or a space as separator, seconds omitted, any number of
fraction digits (truncated to microseconds), offset `±HHMM`, `z`, or no offset (taken as UTC),
and a bare date (midnight UTC, as JavaScript's `new Date("2024-03-21")`). Not accepted: week or
ordinal dates, basic format without dashes, leap seconds, surrounding whitespace — Python's
`datetime.fromisoformat` accepts several of those, so it is not used directly.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_TIMESTAMP = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?"
    r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<offset_hours>[0-9]{2}):?(?P<offset_minutes>[0-9]{2}))?)?",
    re.ASCII,
)


def parse_timestamp(text: object) -> datetime | None:
    """A timezone-aware datetime for `text`, or None if it is not an accepted date-time."""
    if not isinstance(text, str):
        return None
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    fields = match.groupdict()
    try:
        zone = _zone(fields)
        return datetime(
            int(fields["year"]),
            int(fields["month"]),
            int(fields["day"]),
            int(fields["hour"] or 0),
            int(fields["minute"] or 0),
            int(fields["second"] or 0),
            int((fields["fraction"] or "0")[:6].ljust(6, "0")),
            tzinfo=zone,
        )
    except ValueError:
        return None


def _zone(fields: dict[str, str | None]) -> timezone:
    if fields["sign"] is None:
        return UTC
    hours, minutes = int(fields["offset_hours"] or 0), int(fields["offset_minutes"] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if fields["sign"] == "-" else offset)
