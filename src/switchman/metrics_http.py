"""`GET /metrics` over HTTP: the scrape (bearer protection, 404 when metrics are off) for `serve`'s route,
and the worker's own small server (`switchman worker --metrics-port N`: `/metrics` and `/health`).

With `SWITCHMAN_METRICS_TOKEN` set, a scrape must send `Authorization: Bearer <token>` (compared in constant
time); anything else is a 401 in Unleash's error shape. The token is never logged or echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
from collections.abc import AsyncIterator, Generator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchman import metrics
from switchman.config import ConfigurationError, Settings
from switchman.db.engine import Database
from switchman.errors import NotFoundError, ServiceUnavailableError, SwitchmanError, UnauthorizedError
from switchman.http import JSONResponse

log = logging.getLogger(__name__)

PATH = "/metrics"


def authorized(authorization: str | None, token: str | None) -> bool:
    """Whether a scrape may read the metrics: always without a configured `token`; otherwise only with
    `Authorization: Bearer <token>`."""
    if not token:
        return True
    scheme, _, presented = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


async def scrape(db: Database, settings: Settings, authorization: str | None) -> Response:
    """The answer to `GET /metrics`."""
    if not settings.metrics_enabled:
        return _error(NotFoundError(f"The path you were looking for ({PATH}) is not available."))
    if not authorized(authorization, settings.metrics_token):
        error = UnauthorizedError("Metrics need `Authorization: Bearer <SWITCHMAN_METRICS_TOKEN>`.")
        error.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return _error(error)
    try:
        body = await metrics.exposition(db)
    except Exception as exc:
        log.warning("metrics scrape: the database does not answer (%s)", type(exc).__name__)
        return _error(ServiceUnavailableError("The database does not answer"))
    return Response(body, media_type=metrics.CONTENT_TYPE)


def _error(error: SwitchmanError) -> Response:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers or None)


def worker_metrics_app(db: Database, settings: Settings) -> Starlette:
    """The worker's HTTP surface: `/metrics` as on `serve`, and `/health` (the database answers)."""

    async def metrics_route(request: Request) -> Response:
        return await scrape(db, settings, request.headers.get("authorization"))

    async def health(_request: Request) -> Response:
        try:
            await db.ping()
        except Exception as exc:
            log.warning("health check failed: %s", type(exc).__name__)
            return _error(ServiceUnavailableError("The database does not answer"))
        return JSONResponse({"health": "GOOD"})

    return Starlette(routes=[Route(PATH, metrics_route), Route("/health", health)])


class _Server(uvicorn.Server):
    """uvicorn inside a loop it does not own: the worker handles SIGINT/SIGTERM itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serving_worker_metrics(settings: Settings, db: Database) -> AsyncIterator[None]:
    """A `switchman worker` process's metrics: recorded unless `metrics_enabled` is off, and, when
    `worker_metrics_port` is set, served on `settings.host:<port>` in this event loop until the block ends.
    Raises ConfigurationError (one line) when the port cannot be bound."""
    metrics.configure(enabled=settings.metrics_enabled)
    port = settings.worker_metrics_port
    if not port:
        yield
        return
    listener = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((settings.host, port))
    except OSError as exc:
        listener.close()
        raise ConfigurationError(
            f"cannot serve worker metrics on {settings.host}:{port}: {exc.strerror or exc}"
        ) from None
    config = uvicorn.Config(
        worker_metrics_app(db, settings), log_config=None, access_log=False, lifespan="off"
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]), name="worker-metrics")
    log.info("worker metrics on http://%s:%d%s", settings.host, port, PATH)
    try:
        yield
    finally:
        server.should_exit = True
        await task
        listener.close()
