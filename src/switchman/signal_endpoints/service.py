"""Business rules of signal endpoints and their tokens; every change records an audit event.

Functions run inside the caller's transaction (`conn`). Token secrets exist only in the return value of
`create_signal_endpoint_token`; the database keeps their SHA-256 and audit events never carry them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit.log import record_event
from switchman.auth import tokens
from switchman.auth.principal import Principal
from switchman.errors import (
    BadDataError,
    ExceedsLimitError,
    InUse,
    NameExistsError,
    NotFoundError,
    in_use_conflict,
)
from switchman.signal_endpoints import queue, repository, signals
from switchman.signal_endpoints.repository import DbRow
from switchman.signal_endpoints.schemas import (
    CreateSignalEndpointSchema,
    CreateSignalEndpointTokenSchema,
    SetAsideSignalSchema,
    SetAsideSignalsSchema,
    SignalEndpointSchema,
    SignalEndpointTokenSchema,
)
from switchman.timeutil import iso, utcnow

SIGNAL_ENDPOINT_CREATED = "signal-endpoint-created"
SIGNAL_ENDPOINT_UPDATED = "signal-endpoint-updated"
SIGNAL_ENDPOINT_DELETED = "signal-endpoint-deleted"
SIGNAL_RETRIED = "signal-retried"
SIGNAL_ENDPOINT_TOKEN_CREATED = "signal-endpoint-token-created"
SIGNAL_ENDPOINT_TOKEN_UPDATED = "signal-endpoint-token-updated"
SIGNAL_ENDPOINT_TOKEN_DELETED = "signal-endpoint-token-deleted"

ONE_DAY = timedelta(days=1)
_LISTENED_TO = InUse(
    relation="the source of",
    noun="enabled action set",
    remedy="Disable them, point them at another endpoint or delete them first.",
    each="listens to this endpoint",
)


async def _audit(conn: AsyncConnection, type: str, actor: Principal, **fields: Any) -> None:
    """Record a signal endpoint or token change in the audit log; none changes what SDK clients are served."""
    await record_event(conn, type=type, actor=actor, visible_to_clients=False, **fields)


def endpoint_url(base_url: str, name: str) -> str:
    """The public call URL of an endpoint (`{base}/api/signal-endpoint/{name}`, as Unleash's UI shows)."""
    return f"{base_url}/api/signal-endpoint/{name}"


def _token_schema(row: DbRow, secret: str | None = None) -> SignalEndpointTokenSchema:
    fields: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "signal_endpoint_id": row.signal_endpoint_id,
        "created_at": iso(row.created_at),
        "created_by_user_id": row.created_by_user_id,
    }
    if secret is not None:
        fields["token"] = secret
    return SignalEndpointTokenSchema(**fields)


def _endpoint_schema(
    row: DbRow, *, token_rows: list[DbRow], base_url: str | None = None
) -> SignalEndpointSchema:
    fields: dict[str, Any] = {
        "id": row.id,
        "enabled": bool(row.enabled),
        "name": row.name,
        "description": row.description,
        "created_at": iso(row.created_at),
        "created_by_user_id": row.created_by_user_id,
        "tokens": [_token_schema(token) for token in token_rows],
    }
    if base_url is not None:
        fields["url"] = endpoint_url(base_url, row.name)
    return SignalEndpointSchema(**fields)


def _event_data(row: DbRow, **fields: Any) -> dict[str, Any]:
    """An endpoint's or a token's audit data: its id and name, `fields`, when and by whom it was made."""
    made = {"createdAt": iso(row.created_at), "createdByUserId": row.created_by_user_id}
    return {"id": row.id, "name": row.name, **fields, **made}


def _endpoint_event_data(row: DbRow) -> dict[str, Any]:
    return _event_data(row, description=row.description, enabled=bool(row.enabled))


def _token_event_data(row: DbRow) -> dict[str, Any]:
    return _event_data(row, signalEndpointId=row.signal_endpoint_id)


async def require_endpoint(conn: AsyncConnection, endpoint_id: int, *, for_update: bool = False) -> DbRow:
    """The endpoint's row; NotFoundError (404) when there is none."""
    row = await repository.get_endpoint(conn, endpoint_id, for_update=for_update)
    if row is None:
        raise NotFoundError(f"Could not find signal endpoint with id {endpoint_id}.")
    return row


async def _audit_update(conn: AsyncConnection, actor: Principal, before: DbRow, after: DbRow) -> None:
    await _audit(
        conn,
        SIGNAL_ENDPOINT_UPDATED,
        actor,
        data=_endpoint_event_data(after),
        pre_data=_endpoint_event_data(before),
    )


async def _with_tokens(conn: AsyncConnection, row: DbRow, *, base_url: str) -> SignalEndpointSchema:
    token_rows = list(await repository.list_tokens(conn, [row.id]))
    return _endpoint_schema(row, token_rows=token_rows, base_url=base_url)


def _name_exists(name: str) -> NameExistsError:
    return NameExistsError(f"A signal endpoint with the name '{name}' already exists.")


async def _insert_guarding_name(conn: AsyncConnection, name: str, statement: Any) -> Any:
    """Await an insert/update; a unique violation on the name (a lost race) → 409 instead of a 500.

    The transaction is then unusable, which is fine: the raised error rolls it back.
    """
    try:
        return await statement
    except IntegrityError as exc:
        raise _name_exists(name) from exc


# --- signal endpoints -----------------------------------------------------------------------------------


async def list_signal_endpoints(conn: AsyncConnection, *, base_url: str) -> list[SignalEndpointSchema]:
    """Every endpoint (ascending id) with its tokens, without secrets, with its call `url` (optional in
    Unleash's signalEndpointSchema, which its list also uses; Unleash's list leaves it out)."""
    rows = await repository.list_endpoints(conn)
    by_endpoint: dict[int, list[DbRow]] = {}
    for token in await repository.list_tokens(conn):
        by_endpoint.setdefault(token.signal_endpoint_id, []).append(token)
    return [_endpoint_schema(row, token_rows=by_endpoint.get(row.id, []), base_url=base_url) for row in rows]


async def create_signal_endpoint(
    conn: AsyncConnection,
    *,
    payload: CreateSignalEndpointSchema,
    actor: Principal,
    base_url: str,
    limit: int,
) -> SignalEndpointSchema:
    await repository.lock_endpoint_creation(conn)
    if await repository.count_endpoints(conn) >= limit:
        raise ExceedsLimitError("signal endpoint", limit)
    if await repository.name_taken(conn, payload.name):
        raise _name_exists(payload.name)
    row = await _insert_guarding_name(
        conn,
        payload.name,
        repository.insert_endpoint(
            conn,
            name=payload.name,
            description=payload.description,
            enabled=True if payload.enabled is None else payload.enabled,
            created_at=utcnow(),
            created_by_user_id=actor.user_id,
        ),
    )
    await _audit(conn, SIGNAL_ENDPOINT_CREATED, actor, data=_endpoint_event_data(row))
    return _endpoint_schema(row, token_rows=[], base_url=base_url)


async def update_signal_endpoint(
    conn: AsyncConnection,
    *,
    endpoint_id: int,
    payload: CreateSignalEndpointSchema,
    actor: Principal,
    base_url: str,
) -> SignalEndpointSchema:
    """Full update; `enabled` keeps its value when absent. A name used by another endpoint → 409."""
    before = await require_endpoint(conn, endpoint_id, for_update=True)
    if await repository.name_taken(conn, payload.name, except_id=endpoint_id):
        raise _name_exists(payload.name)
    values: dict[str, Any] = {"name": payload.name, "description": payload.description}
    if payload.enabled is not None:
        values["enabled"] = payload.enabled
    row = await _insert_guarding_name(
        conn, payload.name, repository.update_endpoint(conn, endpoint_id, **values)
    )
    await _audit_update(conn, actor, before, row)
    return await _with_tokens(conn, row, base_url=base_url)


async def set_signal_endpoint_enabled(
    conn: AsyncConnection, *, endpoint_id: int, enabled: bool, actor: Principal, base_url: str
) -> SignalEndpointSchema:
    """On/off. Idempotent; an event is recorded only when the state changes."""
    before = await require_endpoint(conn, endpoint_id, for_update=True)
    row = before
    if bool(before.enabled) != enabled:
        updated = await repository.update_endpoint(conn, endpoint_id, enabled=enabled)
        assert updated is not None
        row = updated
        await _audit_update(conn, actor, before, row)
    return await _with_tokens(conn, row, base_url=base_url)


# What uses an endpoint, as `(message, detail per user)`; supplied by the caller (action sets depend on
# signal endpoints, not the other way round).
EndpointUsers = Callable[[AsyncConnection, int], Awaitable[list[str]]]


async def delete_signal_endpoint(
    conn: AsyncConnection, *, endpoint_id: int, actor: Principal, users: EndpointUsers
) -> None:
    """Delete the endpoint and its tokens; its signals stay (and keep their endpoint id).

    Refused with 409 ConflictError naming them while `users` reports any (the enabled action sets listening
    to it: deleting it would silently stop them). The row is locked first, so a set created concurrently
    (which key-share-locks the endpoint) is either seen here or waits and then finds the endpoint gone.
    """
    before = await require_endpoint(conn, endpoint_id, for_update=True)
    using = await users(conn, endpoint_id)
    if using:
        raise in_use_conflict(f'Signal endpoint "{before.name}"', using, _LISTENED_TO)
    await repository.delete_endpoint(conn, endpoint_id)
    await _audit(conn, SIGNAL_ENDPOINT_DELETED, actor, pre_data=_endpoint_event_data(before))


# --- tokens ---------------------------------------------------------------------------------------------


async def list_signal_endpoint_tokens(
    conn: AsyncConnection, *, endpoint_id: int
) -> list[SignalEndpointTokenSchema]:
    """Tokens of an endpoint (ascending id), without secrets; an unknown endpoint has none (Q-10)."""
    return [_token_schema(row) for row in await repository.list_tokens(conn, [endpoint_id])]


async def create_signal_endpoint_token(
    conn: AsyncConnection,
    *,
    endpoint_id: int,
    payload: CreateSignalEndpointTokenSchema,
    actor: Principal,
    limit: int,
) -> SignalEndpointTokenSchema:
    """A new token; the returned schema carries the secret (`token`), the only time it is ever shown."""
    await require_endpoint(conn, endpoint_id, for_update=True)
    if await repository.count_tokens(conn, endpoint_id) >= limit:
        raise ExceedsLimitError("signal endpoint token", limit)
    secret = tokens.new_signal_token_secret()
    row = await repository.insert_token(
        conn,
        endpoint_id=endpoint_id,
        name=payload.name,
        token_hash=tokens.hash_secret(secret),
        created_at=utcnow(),
        created_by_user_id=actor.user_id,
    )
    await _audit(conn, SIGNAL_ENDPOINT_TOKEN_CREATED, actor, data=_token_event_data(row))
    return _token_schema(row, secret=secret)


async def update_signal_endpoint_token(
    conn: AsyncConnection,
    *,
    endpoint_id: int,
    token_id: int,
    payload: CreateSignalEndpointTokenSchema,
    actor: Principal,
) -> SignalEndpointTokenSchema:
    """Rename; the secret is unchanged and not returned. Unknown, or of another endpoint → 404."""
    before = await repository.get_token(conn, endpoint_id, token_id)
    if before is None:
        raise _token_not_found(endpoint_id, token_id)
    row = await repository.rename_token(conn, endpoint_id, token_id, payload.name)
    if row is None:
        raise _token_not_found(endpoint_id, token_id)
    await _audit(
        conn,
        SIGNAL_ENDPOINT_TOKEN_UPDATED,
        actor,
        data=_token_event_data(row),
        pre_data=_token_event_data(before),
    )
    return _token_schema(row)


async def delete_signal_endpoint_token(
    conn: AsyncConnection, *, endpoint_id: int, token_id: int, actor: Principal
) -> None:
    """Delete a token: calls presenting it fail from the moment this transaction commits."""
    before = await repository.get_token(conn, endpoint_id, token_id)
    if before is None or not await repository.delete_token(conn, endpoint_id, token_id):
        raise _token_not_found(endpoint_id, token_id)
    await _audit(conn, SIGNAL_ENDPOINT_TOKEN_DELETED, actor, pre_data=_token_event_data(before))


def _token_not_found(endpoint_id: int, token_id: int) -> NotFoundError:
    return NotFoundError(f"Could not find token {token_id} of signal endpoint {endpoint_id}.")


# --- signals --------------------------------------------------------------------------------------------


async def endpoint_signals_json(conn: AsyncConnection, *, endpoint_id: int, limit: int, offset: int) -> bytes:
    """`signalEndpointSignalsSchema` bytes, newest first; 404 for an unknown endpoint."""
    await require_endpoint(conn, endpoint_id)
    rows = await repository.endpoint_signals(conn, endpoint_id, limit=limit, offset=offset)
    return signals.endpoint_signals_body(rows)


async def signals_for_replay(
    conn: AsyncConnection, *, endpoint_id: int, limit: int, since: datetime | None, until: datetime | None
) -> Iterator[tuple[int, datetime, dict[str, Any]]]:
    """The endpoint's newest `limit` signals in [since, until), oldest first, with their payloads (what a
    backtest replays). Read at once; each payload is parsed only when the iterator reaches it, so a replay
    of 10,000 signals holds their stored texts, not 10,000 parsed payloads."""
    rows = await repository.signals_in_range(conn, endpoint_id, limit=limit, since=since, until=until)
    return ((int(row.id), row.created_at, _payload(row.payload)) for row in reversed(rows))


async def recent_signal_payloads(
    conn: AsyncConnection, *, endpoint_id: int, limit: int
) -> list[dict[str, Any]]:
    """The payloads of the endpoint's newest `limit` signals, newest first (what filter keys can read)."""
    payloads = []
    for text in await repository.recent_payloads(conn, endpoint_id, limit=limit):
        loaded = orjson.loads(text)
        payloads.append(loaded if isinstance(loaded, dict) else {})
    return payloads


def parse_day_filter(raw: str | None, parameter: str) -> datetime | None:
    """`IS:yyyy-MM-dd` → that day's 00:00 UTC; anything else → 400 BadDataError."""
    if raw is None:
        return None
    prefix, _, day = raw.partition(":")
    parsed: datetime | None = None
    if prefix == "IS" and len(day) == 10 and day[4] == "-" and day[7] == "-":
        try:
            parsed = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            parsed = None
    if parsed is None:
        message = f"`{parameter}` must look like IS:yyyy-MM-dd (a real date), e.g. IS:2024-05-01"
        raise BadDataError(
            "Request validation failed: your request body or params contain invalid data. "
            "Refer to the `details` list for more information.",
            details=[{"path": f"query:{parameter}", "message": message}],
        )
    return parsed


async def query_signals_json(
    conn: AsyncConnection, *, created_from: datetime | None, to_day: datetime | None, limit: int, offset: int
) -> bytes:
    """`signalQueryResponseSchema` bytes: signals created on/after `from` and on/before the `to` day."""
    created_before = to_day + ONE_DAY if to_day is not None else None
    rows, total = await repository.query_signals(
        conn, created_from=created_from, created_before=created_before, limit=limit, offset=offset
    )
    return signals.signal_query_body(rows, total)


async def list_set_aside_signals(conn: AsyncConnection, *, limit: int, offset: int) -> SetAsideSignalsSchema:
    """The signals the worker set aside (ADR 0028), newest first."""
    rows = await queue.set_aside_signals(conn, limit=limit, offset=offset)
    return SetAsideSignalsSchema(
        signals=[
            SetAsideSignalSchema(
                id=row.id, payload=_payload(row.payload_json), created_at=iso(row.created_at),
                source="signal-endpoint", source_id=row.source_id,
                created_by_source_token_id=row.created_by_source_token_id, failures=row.failures,
                last_error=row.last_error, set_aside_at=iso(row.set_aside_at),
            )
            for row in rows
        ],
        total=await queue.set_aside_count(conn),
    )  # fmt: skip


async def retry_set_aside_signal(conn: AsyncConnection, actor: Principal, *, signal_id: int) -> None:
    """Put a set-aside signal back in the queue (audited); 404 unless it is set aside."""
    if not await queue.retry_set_aside(conn, signal_id=signal_id):
        raise NotFoundError(f"There is no set-aside signal with id {signal_id}")
    await _audit(conn, SIGNAL_RETRIED, actor, data={"id": signal_id})


def _payload(text: str) -> dict[str, Any]:
    loaded = orjson.loads(text)
    return loaded if isinstance(loaded, dict) else {}


async def signal_summary(conn: AsyncConnection, signal_id: int) -> DbRow | None:
    """The signal's `source`, `source_id`, `payload` (JSON text), `created_at`, `processed_at`; None when
    there is no such signal."""
    return await repository.signal_summary(conn, signal_id)


async def signal_payload(conn: AsyncConnection, signal_id: int) -> str | None:
    """The stored JSON text of a signal's payload, None when there is no such signal."""
    return await repository.signal_payload(conn, signal_id)


async def endpoint_exists(conn: AsyncConnection, endpoint_id: int, *, key_share: bool = False) -> bool:
    """Whether the endpoint exists; with `key_share` (PostgreSQL) a concurrent delete of it waits until
    the caller's transaction ends."""
    return await repository.get_endpoint(conn, endpoint_id, key_share=key_share) is not None


# --- the web console's reads (ADR 0026): each bounded, so a page stays fast at any table size -----------------


async def console_signals(
    conn: AsyncConnection, *, endpoint_id: int, limit: int, token_id: int | None, since: datetime | None
) -> list[dict[str, Any]]:
    """The endpoint's newest `limit` signals (by `token_id`, at or after `since`), newest first, with the
    token's name and the payload pretty-printed (the console escapes it)."""
    await require_endpoint(conn, endpoint_id)
    rows = await repository.console_signals(conn, endpoint_id, limit=limit, token_id=token_id, since=since)
    found = []
    for row in rows:
        try:
            pretty = orjson.dumps(orjson.loads(row.payload), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            pretty = str(row.payload)
        found.append(
            {
                "id": int(row.id),
                "created_at": iso(row.created_at),
                "payload": pretty,
                "token_name": row.token_name,
            }
        )
    return found


async def console_activity(conn: AsyncConnection, *, since: datetime, window: int) -> list[tuple[str, int]]:
    """Signals per endpoint name among the newest `window` signals that arrived after `since`, busiest first."""
    counts = await repository.recent_counts_by_endpoint(conn, since=since, window=window)
    names = {int(row.id): str(row.name) for row in await repository.list_endpoints(conn)}
    return sorted(((names.get(source_id, f"#{source_id}"), n) for source_id, n in counts.items()),
                  key=lambda item: (-item[1], item[0]))  # fmt: skip


async def console_last_signals(conn: AsyncConnection, endpoint_ids: list[int]) -> dict[int, str]:
    """When each endpoint's newest signal arrived (endpoints without one are left out)."""
    found = {}
    for endpoint_id in endpoint_ids:
        created_at = await repository.last_signal_at(conn, endpoint_id)
        if created_at is not None:
            found[endpoint_id] = iso(created_at)
    return found


async def console_signals_per_minute(
    conn: AsyncConnection, *, since: datetime, minutes: int, window: int
) -> dict[str, list[int]]:
    """Per endpoint name, signals per minute over the `minutes` minutes after `since` (oldest first), among
    the newest `window` signals."""
    names = {int(row.id): str(row.name) for row in await repository.list_endpoints(conn)}
    series: dict[str, list[int]] = {}
    for row in await repository.recent_arrivals(conn, since=since, window=window):
        minute = int((row.created_at - since).total_seconds() // 60)
        if 0 <= minute < minutes:
            name = names.get(int(row.source_id), f"#{row.source_id}")
            series.setdefault(name, [0] * minutes)[minute] += 1
    return dict(sorted(series.items(), key=lambda item: -sum(item[1])))
