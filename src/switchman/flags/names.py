"""Unleash's "URL friendly" name rule for project ids, environment names, feature names and tag types."""

from __future__ import annotations

import re

from switchman.errors import VALIDATION_MESSAGE, BadDataError

_URL_FRIENDLY = re.compile(r"^[A-Za-z0-9._~-]+$")


def is_url_friendly(value: str) -> bool:
    """Letters, digits, `-`, `_`, `.`, `~` (characters `encodeURIComponent` leaves alone, minus `!*'()`),
    and not `.` or `..` (those would address a different path)."""
    return bool(_URL_FRIENDLY.match(value)) and value not in {".", ".."}


def check_name(value: str, *, field: str = "name", min_length: int = 1, max_length: int = 100) -> str:
    """Return `value` when URL friendly and within length; else 400 BadDataError with a `/field` detail."""
    problem: str | None = None
    if len(value) < min_length:
        problem = f'"{field}" must be at least {min_length} character{"s" if min_length > 1 else ""} long'
    elif len(value) > max_length:
        problem = f'"{field}" must be at most {max_length} characters long'
    elif not is_url_friendly(value):
        problem = (
            f'"{field}" must be URL friendly: use only letters, digits and the characters - _ . ~ '
            f'(and not "." or ".." alone)'
        )
    if problem is not None:
        raise BadDataError(VALIDATION_MESSAGE, details=[{"path": f"/{field}", "message": problem}])
    return value
