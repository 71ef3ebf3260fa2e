"""The process's runtime: every long-lived component, built once, in one order, by `open_runtime`.

`switchman serve` (the app's lifespan) and `switchman worker` both build it here; nothing is created
lazily on a first request and nothing is looked up by name. Start-up order, and why:
1. the database (everything needs it) and the wake-up channel;
2. the flag backend (the worker drives it; `/actions/config` reads a remote one);
3. `serve` only: the API tokens the settings ask for, ingestion — signal writer, group committer, rate limiter — and the retention task (`serve` only);
4. the worker last, once everything it uses exists, with the notification dispatcher (ADR 0027).
Shutdown runs the other way: the worker stops first (no run is cut by a closing backend), queued signals
are flushed before the database closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request
from starlette.types import Scope

from switchman.action_sets.page_cache import SettledPageCache
from switchman.api_tokens.service import ensure_client_tokens
from switchman.auth.cache import PrincipalCache
from switchman.auth.service import ensure_admin_tokens
from switchman.client_api.service import PayloadCache
from switchman.config import Settings
from switchman.db.engine import Database
from switchman.flags.backend import FlagBackend
from switchman.flags.factory import create_flag_backend
from switchman.notifications.dispatcher import RunningDispatcher, start_dispatcher
from switchman.secret_box import SecretBox
from switchman.signal_endpoints.cluster_rate_limit import ClusterRateLimiter
from switchman.signal_endpoints.endpoint_rules import EndpointRules
from switchman.signal_endpoints.group_commit import GroupCommitter
from switchman.signal_endpoints.rate_limit import EndpointRateLimiter, RateLimiter
from switchman.signal_endpoints.retention import run_retention
from switchman.signal_endpoints.signal_writer import IngestCall, Outcome, SignalWriter, make_signal_writer
from switchman.tasks import cancel_and_wait
from switchman.wakeup import Wakeup
from switchman.worker.loop import WorkerHandle, start_worker

# PostgreSQL: two ingestion batches in flight, so one is sent while the other waits for its WAL flush.
# SQLite has one writer at a time, so a second batch would only queue on the database lock.
POSTGRES_BATCHES_IN_FLIGHT = 2


@dataclass
class Ingestion:
    """The signal write path of a `serve` process (ADR 0005)."""

    writer: SignalWriter
    committer: GroupCommitter[IngestCall, Outcome]
    rate_limiter: EndpointRateLimiter | None  # None: SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND=0
    endpoint_rules: EndpointRules  # signed calls (ADR 0020), split alert groups (ADR 0021)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    wakeup: Wakeup
    flag_backend: FlagBackend
    principal_cache: PrincipalCache  # verified admin credentials (ADR 0011)
    client_payload_cache: PayloadCache  # serialized SDK payloads by query and revision
    event_page_cache: SettledPageCache  # settled events-listing pages (ADR 0011)
    secret_box: SecretBox | None = None  # seals signing secrets; None without SWITCHMAN_SECRET_KEY
    ingestion: Ingestion | None = None  # `serve` only
    retention: asyncio.Task[None] | None = None  # `serve` only, when retention is on
    worker: WorkerHandle | None = None  # when this process runs a worker
    notifications: RunningDispatcher | None = None  # beside the worker: delivers the outbox (ADR 0027)

    def require_ingestion(self) -> Ingestion:
        assert self.ingestion is not None, "ingestion runs only in `serve`"
        return self.ingestion


def runtime_of(request: Request) -> Runtime:
    """The runtime of the app serving `request`."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def runtime_of_scope(scope: Scope) -> Runtime:
    """The runtime of the app serving a raw ASGI call (the fast paths)."""
    runtime: Runtime = scope["app"].state.runtime
    return runtime


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, *, serve: bool, run_worker: bool, pool_size: int | None = None
) -> AsyncIterator[Runtime]:
    """Build the runtime (see the module docstring for the order), yield it, tear it down in reverse."""
    db = Database(settings.async_database_url, pool_size=pool_size or settings.database_pool_size)
    runtime = Runtime(
        settings=settings,
        db=db,
        wakeup=Wakeup(),
        flag_backend=create_flag_backend(settings, db),
        principal_cache=PrincipalCache(settings.auth_cache_seconds),
        client_payload_cache=PayloadCache(),
        event_page_cache=SettledPageCache(
            settings.event_page_cache_bytes,
            retention=timedelta(days=days) if (days := settings.action_set_event_retention_days) else None,
        ),
        secret_box=SecretBox(keys) if (keys := settings.secret_keys()) else None,
    )
    try:
        if serve:
            await _bootstrap_tokens(settings, db)
            runtime.ingestion = _start_ingestion(runtime)
            if settings.signal_retention_days > 0 or settings.action_set_event_retention_days > 0:
                runtime.retention = asyncio.create_task(
                    run_retention(
                        db,
                        retention_days=settings.signal_retention_days,
                        delivery_window=timedelta(seconds=settings.signal_delivery_window_seconds),
                        event_retention_days=settings.action_set_event_retention_days,
                    ),
                    name="retention",
                )
        if run_worker:
            runtime.worker = await start_worker(
                settings=settings,
                db=db,
                wakeup=runtime.wakeup,
                backend=runtime.flag_backend,
                ingestion_in_process=serve,
            )
            runtime.notifications = start_dispatcher(settings=settings, db=db, box=runtime.secret_box)
        yield runtime
    finally:
        await _close(runtime)


async def _bootstrap_tokens(settings: Settings, db: Database) -> None:
    """The API tokens the settings ask for (`SWITCHMAN_INIT_*_API_TOKENS`), created unless present."""
    if settings.init_admin_api_tokens:
        async with db.transaction() as conn:
            await ensure_admin_tokens(conn, settings.init_admin_api_tokens)
    if settings.init_client_api_tokens:
        async with db.transaction() as conn:
            await ensure_client_tokens(conn, settings.init_client_api_tokens)


def _start_ingestion(runtime: Runtime) -> Ingestion:
    settings = runtime.settings
    in_flight = POSTGRES_BATCHES_IN_FLIGHT if runtime.db.is_postgres else 1
    writer = make_signal_writer(
        runtime.db,
        runtime.wakeup,
        connections=in_flight,
        delivery_window=timedelta(seconds=settings.signal_delivery_window_seconds),
    )
    committer: GroupCommitter[IngestCall, Outcome] = GroupCommitter(
        writer.write, max_batch=settings.group_commit_max_batch, max_in_flight=in_flight, name="signal-ingest"
    )
    return Ingestion(
        writer=writer,
        committer=committer,
        rate_limiter=_rate_limiter(runtime),
        endpoint_rules=EndpointRules(
            runtime.db, runtime.secret_box, sns_host_pattern=settings.sns_host_pattern
        ),
    )


def _rate_limiter(runtime: Runtime) -> EndpointRateLimiter | None:
    """Shared by the cluster on PostgreSQL unless the settings say per process; per process on SQLite."""
    rate = runtime.settings.signal_rate_limit_per_second
    if rate <= 0:
        return None
    if runtime.db.is_postgres and runtime.settings.signal_rate_limit_scope == "cluster":
        return ClusterRateLimiter(runtime.db, rate)
    return RateLimiter(rate)


async def _close(runtime: Runtime) -> None:
    if runtime.worker is not None:
        await runtime.worker.stop()
        runtime.worker = None
    if runtime.notifications is not None:  # an attempt cut here is retried: its message is still pending
        await runtime.notifications.stop()
        runtime.notifications = None
    if runtime.retention is not None:
        await cancel_and_wait(runtime.retention)
        runtime.retention = None
    if runtime.ingestion is not None:
        await runtime.ingestion.committer.close()  # queued signals are written before the database closes
        await runtime.ingestion.writer.close()
        if runtime.ingestion.rate_limiter is not None:
            await runtime.ingestion.rate_limiter.close()
        await runtime.ingestion.endpoint_rules.close()
        runtime.ingestion = None
    await runtime.flag_backend.close()
    await runtime.wakeup.close()
    await runtime.db.dispose()
