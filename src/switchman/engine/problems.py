"""Write-time validation findings shared by filter and action validation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """A configured resource limit that a request exceeded (Unleash's `ExceedsLimitError`)."""

    resource: str  # singular noun for the message, e.g. "filter", "filter value"
    maximum: int


@dataclass(frozen=True)
class Problem:
    """One reason a request body is unacceptable.

    `path` is a JSON pointer into the request body (`/match/payload/alert.status/value`).
    `limit` is set when the problem is an exceeded resource limit rather than invalid data, so
    the caller can answer with Unleash's limit error instead of a plain validation error.
    """

    path: str
    message: str
    limit: Limit | None = None


@dataclass(frozen=True)
class ActionSetWarning:
    """Something about a valid action set that probably does not do what its author meant.

    Never refuses a write. `path` is a JSON pointer into the action set body; `code` is stable
    (documented in docs/filters.md), `message` a sentence for people.
    """

    path: str
    code: str
    message: str


def pointer(*segments: str | int) -> str:
    """Join segments into a JSON pointer (RFC 6901), escaping `~` and `/` inside segments."""
    return "".join("/" + str(segment).replace("~", "~0").replace("/", "~1") for segment in segments)
