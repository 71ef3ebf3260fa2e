"""The format an endpoint's sender posts (switchman's sub-resource, ADR 0021): stored, audited, read by
the worker and by `explain` to add the normalised view (`switchman.engine.formats`) to the payload's keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit.log import record_event
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.engine.formats import FIELDS, NORMALISED_PREFIX, Format, normalise, normalised_keys
from switchman.engine.payload import flatten_payload
from switchman.errors import BadDataError, NotFoundError
from switchman.signal_endpoints import repository
from switchman.signal_endpoints.schemas import (
    NormalisedSignalSchema,
    NormalisedSignalsSchema,
    SetSignalEndpointFormatSchema,
    SignalEndpointFormatSchema,
)
from switchman.signal_endpoints.service import require_endpoint
from switchman.timeutil import iso, utcnow

FORMAT_SET = "signal-endpoint-format-set"
FORMAT_REMOVED = "signal-endpoint-format-removed"
_table = t.signal_endpoint_format
# The formats whose payload is a group of alerts that can be split into one signal per alert.
SPLITTABLE = frozenset({Format.ALERTMANAGER, Format.GRAFANA})


@dataclass(frozen=True)
class SenderFormat:
    format: Format
    split_alerts: bool = False


def filter_view(sender: SenderFormat | None, payload: Mapping[str, Any]) -> dict[str, object]:
    """What filters read for a payload of an endpoint whose format is `sender` (None: it has none): the
    payload's flattened keys and the format's normalised view, which wins over a payload key of its name."""
    flat = flatten_payload(payload)
    if sender is not None:
        flat.update(normalised_keys(sender.format, payload, split=sender.split_alerts))
    return flat


def _schema(endpoint_id: int, fmt: str, split: bool, updated_at: object) -> SignalEndpointFormatSchema:
    return SignalEndpointFormatSchema(
        signal_endpoint_id=endpoint_id,
        format=fmt,
        split_alerts=split,
        normalised_keys=[NORMALISED_PREFIX + field for field in FIELDS],
        updated_at=iso(updated_at),  # type: ignore[arg-type]
    )


async def format_of(conn: AsyncConnection, endpoint_id: int) -> SenderFormat | None:
    """The endpoint's sender format; None when it has none (or names one this version does not know)."""
    row = (
        await conn.execute(
            sa.select(_table.c.format, _table.c.split_alerts).where(
                _table.c.signal_endpoint_id == endpoint_id
            )
        )
    ).first()
    if row is None or row.format not in set(Format):
        return None
    return SenderFormat(Format(row.format), bool(row.split_alerts))


async def get_format(conn: AsyncConnection, endpoint_id: int) -> SignalEndpointFormatSchema:
    await require_endpoint(conn, endpoint_id)
    row = (await conn.execute(sa.select(_table).where(_table.c.signal_endpoint_id == endpoint_id))).first()
    if row is None:
        raise NotFoundError(f"Signal endpoint {endpoint_id} has no sender format.")
    return _schema(endpoint_id, row.format, bool(row.split_alerts), row.updated_at)


async def set_format(
    conn: AsyncConnection, *, endpoint_id: int, payload: SetSignalEndpointFormatSchema, actor: Principal
) -> SignalEndpointFormatSchema:
    await require_endpoint(conn, endpoint_id)
    if payload.split_alerts and Format(payload.format) not in SPLITTABLE:
        raise BadDataError(
            f"splitAlerts applies to {', '.join(sorted(SPLITTABLE))} groups only.",
            details=[{"path": "/splitAlerts", "message": "only for alertmanager and grafana"}],
        )
    before = await format_of(conn, endpoint_id)
    now = utcnow()
    values = {"format": payload.format, "split_alerts": payload.split_alerts, "updated_at": now}
    await conn.execute(_table.delete().where(_table.c.signal_endpoint_id == endpoint_id))
    await conn.execute(_table.insert().values(signal_endpoint_id=endpoint_id, **values))
    await record_event(
        conn,
        type=FORMAT_SET,
        actor=actor,
        visible_to_clients=False,
        data={"signalEndpointId": endpoint_id, "format": payload.format, "splitAlerts": payload.split_alerts},
        pre_data={"format": str(before.format), "splitAlerts": before.split_alerts} if before else None,
    )
    return _schema(endpoint_id, payload.format, payload.split_alerts, now)


async def delete_format(conn: AsyncConnection, *, endpoint_id: int, actor: Principal) -> None:
    await require_endpoint(conn, endpoint_id)
    before = await format_of(conn, endpoint_id)
    deleted = await conn.execute(_table.delete().where(_table.c.signal_endpoint_id == endpoint_id))
    if not deleted.rowcount:
        raise NotFoundError(f"Signal endpoint {endpoint_id} has no sender format.")
    await record_event(
        conn,
        type=FORMAT_REMOVED,
        actor=actor,
        visible_to_clients=False,
        pre_data={"signalEndpointId": endpoint_id, "format": str(before.format) if before else None},
    )


async def normalised_signals(
    conn: AsyncConnection, *, endpoint_id: int, limit: int, offset: int
) -> NormalisedSignalsSchema:
    """The endpoint's signals, newest first, each with the normalised view its sender format reads."""
    await require_endpoint(conn, endpoint_id)
    sender = await format_of(conn, endpoint_id)
    if sender is None:
        raise NotFoundError(f"Signal endpoint {endpoint_id} has no sender format.")
    signals = []
    for row in await repository.endpoint_signals(conn, endpoint_id, limit=limit, offset=offset):
        loaded = orjson.loads(row.payload)
        payload = loaded if isinstance(loaded, dict) else {}
        signals.append(
            NormalisedSignalSchema(
                id=row.id,
                created_at=iso(row.created_at),
                normalised=normalise(sender.format, payload, split=sender.split_alerts),
            )
        )
    return NormalisedSignalsSchema(
        format=str(sender.format), split_alerts=sender.split_alerts, signals=signals
    )
