"""The `REGEX` operator's patterns: RE2 syntax, evaluated by RE2 itself (ADR 0018).

RE2 matches in time linear in the input and has no backtracking, so a hostile pattern cannot stall the
worker; look-around and back-references are not RE2 syntax and are refused. Semantics are those of
Unleash's client specification (suite 21): a search anywhere in the value (anchor with `^…$` for a
whole-value match), inline flags `(?i)`, `(?m)`, `(?s)`, `caseInsensitive` for the whole pattern, an
invalid pattern never matches. Compiled patterns are cached per (pattern, caseInsensitive).
"""

from __future__ import annotations

import functools
from typing import Any

import re2  # type: ignore[import-untyped]

# Patterns longer than this are refused on write and never match (a cap on RE2's compile cost and memory).
MAX_PATTERN_LENGTH = 1024
# RE2's budget for one compiled pattern; a pattern that needs more fails to compile and never matches.
_MAX_PROGRAM_BYTES = 1 << 20


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be a `REGEX` filter's value, or None when it can."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is longer than {MAX_PATTERN_LENGTH} characters"
    try:
        re2.compile(pattern, _options(case_insensitive=False))
    except (re2.error, UnicodeError) as exc:
        return f"is not an RE2 regular expression ({_reason(exc)})"
    return None


def search(pattern: str, text: str, *, case_insensitive: bool) -> bool | None:
    """Whether `pattern` matches anywhere in `text`; None when the pattern is unusable."""
    compiled = _compiled(pattern, case_insensitive)
    if compiled is None:
        return None
    try:
        return compiled.search(text) is not None
    except UnicodeError:  # a lone surrogate (JSON "\ud800") has no UTF-8 form for RE2 to read
        return False


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str, case_insensitive: bool) -> Any:
    if len(pattern) > MAX_PATTERN_LENGTH:
        return None
    try:
        return re2.compile(pattern, _options(case_insensitive=case_insensitive))
    except (re2.error, UnicodeError):
        return None


def _options(*, case_insensitive: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # an invalid pattern is reported to the user, not to stderr
    options.case_sensitive = not case_insensitive
    options.max_mem = _MAX_PROGRAM_BYTES
    return options


def _reason(exc: Exception) -> str:
    message = exc.args[0] if exc.args else str(exc)
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
