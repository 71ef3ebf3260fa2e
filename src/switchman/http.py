"""HTTP helpers shared by routes: fast JSON responses and query-parameter normalisation."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse

from switchman.db.types import MAX_ID
from switchman.errors import NotFoundError

# Unleash's shared paging helper: defaults 50/0, maximum limit 1000.
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


# Both subclass Starlette's JSONResponse so that FastAPI documents their bodies with the route's
# response model (it documents other response classes as `type: string`).


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class RawJSONResponse(StarletteJSONResponse):
    """A body that is already serialized JSON (bytes or str)."""

    def render(self, content: Any) -> bytes:
        if content is None:
            return b""
        return content.encode() if isinstance(content, str) else bytes(content)


def normalize_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """Non-numeric, zero, negative or too-large → the default (Unleash's `normalizeQueryParams`; never 400)."""
    value = _parse_int(raw)
    if value is None or value <= 0 or value > maximum:
        return default
    return value


def normalize_offset(raw: str | None) -> int:
    """Non-numeric or negative → 0."""
    value = _parse_int(raw)
    return value if value is not None and value > 0 else 0


def _parse_int(raw: str | None) -> int | None:
    if raw is None:
        return None
    text = raw.strip()
    if not text or len(text) > 18:
        return None
    try:
        return int(text, 10)
    except ValueError:
        return None


def parse_path_id(raw: str, what: str) -> int:
    """A path id as an int. Anything that cannot name a stored `what` (not plain ASCII digits, 0, beyond
    `MAX_ID`) is a 404, as an unknown id is: path parameters are strings in Unleash."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 10:
        value = int(raw)
        if 0 < value <= MAX_ID:
            return value
    raise NotFoundError(f"Could not find {what} with id {raw[:40]}.")
