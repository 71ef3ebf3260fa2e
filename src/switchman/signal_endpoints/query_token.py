"""Whether an endpoint accepts its token as a `token` query parameter (switchman's sub-resource, ADR 0020).

For senders that can set neither an `Authorization` header nor URL credentials. Off by default: a URL is
written to proxies' and load balancers' logs, so a token in it is easier to leak than one in a header.
switchman's own request log never writes query strings.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit.log import record_event
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.signal_endpoints.schemas import SignalEndpointQueryTokenSchema
from switchman.signal_endpoints.service import require_endpoint
from switchman.timeutil import utcnow

QUERY_TOKEN_SET = "signal-endpoint-query-token-set"
_table = t.signal_endpoint_query_token


async def _accepted(conn: AsyncConnection, endpoint_id: int) -> bool:
    found = await conn.scalar(
        sa.select(_table.c.signal_endpoint_id).where(_table.c.signal_endpoint_id == endpoint_id)
    )
    return found is not None


async def get_query_token(conn: AsyncConnection, endpoint_id: int) -> SignalEndpointQueryTokenSchema:
    await require_endpoint(conn, endpoint_id)
    return SignalEndpointQueryTokenSchema(
        signal_endpoint_id=endpoint_id, accepted=await _accepted(conn, endpoint_id)
    )


async def set_query_token(
    conn: AsyncConnection, *, endpoint_id: int, accepted: bool, actor: Principal
) -> SignalEndpointQueryTokenSchema:
    await require_endpoint(conn, endpoint_id)
    before = await _accepted(conn, endpoint_id)
    if accepted and not before:
        await conn.execute(_table.insert().values(signal_endpoint_id=endpoint_id, created_at=utcnow()))
    elif before and not accepted:
        await conn.execute(_table.delete().where(_table.c.signal_endpoint_id == endpoint_id))
    if accepted != before:
        await record_event(
            conn,
            type=QUERY_TOKEN_SET,
            actor=actor,
            visible_to_clients=False,
            data={"signalEndpointId": endpoint_id, "accepted": accepted},
            pre_data={"accepted": before},
        )
    return SignalEndpointQueryTokenSchema(signal_endpoint_id=endpoint_id, accepted=accepted)
