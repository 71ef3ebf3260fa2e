"""Signals on the wire, built from stored rows without per-row models.

`signal.payload` holds the payload as compact JSON text, so responses splice it in as a fragment: each
row's other fields go through `orjson`, and the payload bytes are appended unparsed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from switchman.signal_endpoints.schemas import SIGNAL_SOURCE
from switchman.timeutil import iso


def wire_time(value: datetime) -> str:
    """`timeutil.iso`, faster for UTC datetimes (the hot paths format one or more per signal)."""
    if value.tzinfo is not UTC:
        return iso(value)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031 - twice as fast as isoformat()
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond // 1000,
    )


def signal_row_to_wire(row: Any) -> dict[str, Any]:
    """A stored signal as Unleash's `signalSchema` dict (payload parsed), e.g. for event snapshots.

    `row` needs `id`, `source`, `source_id`, `created_by_source_token_id`, `payload` (JSON text) and
    `created_at` (aware datetime) — a row of `tables.signal` has them all.
    """
    return {
        "id": row.id,
        "source": row.source,
        "sourceId": row.source_id,
        "createdBySourceTokenId": row.created_by_source_token_id,
        "createdAt": wire_time(row.created_at),
        "payload": orjson.loads(row.payload),
    }


def signal_json(
    *, signal_id: int, source_id: int, token_id: int | None, created_at: datetime, payload: bytes | str
) -> bytes:
    """One `signalSchema` object as JSON bytes, with `payload` spliced in unparsed."""
    head = orjson.dumps(
        {
            "id": signal_id,
            "source": SIGNAL_SOURCE,
            "sourceId": source_id,
            "createdBySourceTokenId": token_id,
            "createdAt": wire_time(created_at),
        }
    )
    return _with_payload(head, payload)


def endpoint_signals_body(rows: Iterable[Any]) -> bytes:
    """`signalEndpointSignalsSchema` from rows of `repository.endpoint_signals`."""
    items = [_listed_signal(row, {}) for row in rows]
    return b'{"signalEndpointSignals":[' + b",".join(items) + b"]}"


def signal_query_body(rows: Iterable[Any], total: int) -> bytes:
    """`signalQueryResponseSchema` from rows of `repository.query_signals`."""
    items = [
        _listed_signal(row, {"sourceName": row.source_name, "sourceDescription": row.source_description})
        for row in rows
    ]
    return b'{"signals":[' + b",".join(items) + b'],"total":' + str(total).encode() + b"}"


def _listed_signal(row: Any, extra: dict[str, Any]) -> bytes:
    """A signal of a listing, with the name of the token that sent it (null once deleted)."""
    head = {
        "id": row.id,
        "source": row.source,
        "sourceId": row.source_id,
        "createdAt": wire_time(row.created_at),
        "tokenName": row.token_name,
        **extra,
    }
    return _with_payload(orjson.dumps(head), row.payload)


def _with_payload(head: bytes, payload: bytes | str) -> bytes:
    fragment = payload.encode() if isinstance(payload, str) else payload
    return head[:-1] + b',"payload":' + fragment + b"}"
