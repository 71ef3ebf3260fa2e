"""Reading the decision trace (ADR 0022): a signal's decisions with its normalised view, and an action set's
decisions newest first."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets import decision_store
from switchman.action_sets.service import require_action_set
from switchman.engine.formats import normalise
from switchman.errors import NotFoundError
from switchman.signal_endpoints import sender_format
from switchman.signal_endpoints import service as signal_endpoints_service
from switchman.signal_endpoints.schemas import SIGNAL_SOURCE
from switchman.timeutil import iso


async def signal_trace(conn: AsyncConnection, signal_id: int) -> dict[str, Any]:
    """`signalTraceSchema`: the signal's state and its decisions; NotFoundError when there is no such
    signal (or it was pruned)."""
    found = await signal_endpoints_service.signal_summary(conn, signal_id)
    if found is None:
        raise NotFoundError(f"Could not find signal with id {signal_id}.")
    normalised: dict[str, str] | None = None
    if found.source == SIGNAL_SOURCE:
        sender = await sender_format.format_of(conn, found.source_id)
        if sender is not None:
            payload = orjson.loads(found.payload)
            normalised = normalise(sender.format, payload if isinstance(payload, dict) else {},
                                   split=sender.split_alerts)  # fmt: skip
    return {
        "signalId": int(found.id),
        "source": found.source,
        "sourceId": int(found.source_id),
        "createdAt": iso(found.created_at),
        "state": "processed" if found.processed_at is not None else "pending",
        "normalised": normalised,
        "decisions": await decision_store.decisions_of_signal(conn, signal_id),
    }


async def action_set_decisions(
    conn: AsyncConnection, *, project: str, action_set_id: int, limit: int, offset: int, before: int | None
) -> dict[str, Any]:
    """`decisionsSchema`: the set's decisions, newest first; NotFoundError for an unknown project or set."""
    await require_action_set(conn, project=project, action_set_id=action_set_id)
    decisions = await decision_store.decisions_of_action_set(
        conn, action_set_id=action_set_id, limit=limit, offset=offset, before=before
    )
    return {"decisions": decisions}
