"""`create_app(settings)`: the FastAPI application with its routers, error rendering and lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchman import __version__
from switchman.action_sets.listing_fast_path import EventsListingFastPath
from switchman.action_sets.router import router as action_sets_router
from switchman.action_sets.router import signals_router
from switchman.api_tokens.router import router as api_tokens_router
from switchman.client_api.router import openapi_components as client_api_components
from switchman.client_api.router import router as client_api_router
from switchman.config import Settings
from switchman.console.router import router as console_router
from switchman.db.migrate import migrate
from switchman.errors import (
    VALIDATION_MESSAGE,
    BadDataError,
    ContentTooLargeError,
    ContentTypeError,
    MethodNotAllowedError,
    NotFoundError,
    ServiceUnavailableError,
    SwitchmanError,
)
from switchman.flags.router import router as flags_router
from switchman.http import JSONResponse
from switchman.logs import RequestLogMiddleware
from switchman.metrics import configure as configure_metrics
from switchman.metrics_http import scrape as scrape_metrics
from switchman.notifications.router import router as notifications_router
from switchman.openapi import admin_body_guarded, document_errors, error_responses
from switchman.runtime import open_runtime, runtime_of
from switchman.service_accounts.router import router as service_accounts_router
from switchman.signal_endpoints import ingest
from switchman.signal_endpoints.router import router as signal_endpoints_router

log = logging.getLogger(__name__)

# Admin API request bodies are small; Express's default JSON limit in Unleash is 100 kB too.
ADMIN_BODY_LIMIT = 100 * 1024


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await migrate(settings.async_database_url)
        async with open_runtime(settings, serve=True, run_worker=settings.run_worker) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(
        title="switchman",
        version=__version__,
        description="Open, Unleash-compatible Signals & Actions.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        # FastAPI's native OpenTelemetry hooks check their set-up on every request (≈10 µs, measured in
        # ADR 0005); switchman does not export telemetry, and its request log is its own middleware.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    configure_metrics(enabled=settings.metrics_enabled)
    _install_error_handlers(app)
    app.include_router(api_tokens_router)
    app.include_router(flags_router)
    app.include_router(service_accounts_router)
    app.include_router(signal_endpoints_router)
    app.include_router(action_sets_router)
    app.include_router(signals_router)
    app.include_router(notifications_router)
    app.include_router(client_api_router)
    app.include_router(console_router)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/health", tags=["Operational"], operation_id="getHealth", responses=error_responses(503))
    async def health(request: Request) -> dict[str, str]:
        try:
            await runtime_of(request).db.ping()
        except Exception as exc:
            log.warning("health check failed: %s", type(exc).__name__)
            raise ServiceUnavailableError("The database does not answer") from exc
        return {"health": "GOOD"}

    @app.get("/metrics", include_in_schema=False)  # switchman's own (Prometheus), not an Unleash route
    async def metrics(request: Request) -> Response:
        return await scrape_metrics(runtime_of(request).db, settings, request.headers.get("authorization"))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("paths", {}).update(ingest.openapi_paths)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(client_api_components)
            schema["components"]["schemas"].update(ingest.openapi_components)
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(
                {
                    "apiKey": {"type": "apiKey", "in": "header", "name": "Authorization"},
                    "bearerToken": {"type": "http", "scheme": "bearer"},
                    # Signal endpoint calls only: the endpoint token as the Basic password (or user).
                    "basicAuth": {"type": "http", "scheme": "basic"},
                }
            )
            schema["security"] = [{"apiKey": []}, {"bearerToken": []}]
            app.openapi_schema = document_errors(schema, app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(AdminBodyGuard)
    app.add_middleware(EventsListingFastPath)  # the events listing's common case skips the layers below
    app.add_middleware(ingest.IngestFastPath)  # and so does ingestion, the hottest path (first in line)
    app.add_middleware(RequestLogMiddleware)
    return app


class AdminBodyGuard:
    """Edge checks before routing.

    A NUL character, which no name or id holds and PostgreSQL cannot bind, is 404 in the path and 400 in
    the query string. Admin-API bodies: 415 unless JSON; 413 over the limit, by the declared length and,
    for bodies without one, while they stream in, so an endless chunked body is never buffered whole.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem: SwitchmanError | None = None
            if "\x00" in scope["path"]:  # nothing is named with one: the path names nothing
                problem = NotFoundError(f"The path you were looking for ({scope['path']}) is not available.")
            elif b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
                problem = BadDataError("The query string contains a NUL character")
            elif admin_body_guarded(scope["method"], scope["path"]):
                problem = _admin_body_problem(dict(scope["headers"]))
                receive = _limited(receive, ADMIN_BODY_LIMIT)
            if problem is not None:
                await _error_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _limited(receive: Receive, limit: int) -> Receive:
    """`receive` that raises 413 (as an HTTPException, which FastAPI's body reading passes on) once the
    body has grown past `limit` bytes."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise StarletteHTTPException(413, "request entity too large")
        return message

    return limited


def _admin_body_problem(headers: dict[bytes, bytes]) -> SwitchmanError | None:
    length_header = headers.get(b"content-length")
    chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
    try:
        length = int(length_header) if length_header is not None else 0
    except ValueError:
        return BadDataError("Invalid Content-Length header")
    if length > ADMIN_BODY_LIMIT:
        return ContentTooLargeError("request entity too large")
    if length == 0 and not chunked:
        return None  # bodyless POSTs (…/on, …/off) accept any content type
    media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if media_type != b"application/json" and not media_type.endswith(b"+json"):
        return ContentTypeError(
            "We do not accept the content-type you provided "
            f"({media_type.decode('latin-1') or 'none'}). Try using one of the content-types we do accept "
            "instead (application/json) and make sure the body is in the corresponding format."
        )
    return None


def _error_response(error: SwitchmanError) -> Response:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers or None)


def _install_error_handlers(app: FastAPI) -> None:
    async def switchman_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SwitchmanError)
        return _error_response(exc)

    async def validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = []
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            where = loc[0] if loc else "body"
            pointer = "/" + "/".join(loc[1:])
            if error.get("type") == "json_invalid":
                details.append({"path": "/", "message": "The request body is not valid JSON"})
            elif where == "body":
                details.append({"path": pointer, "message": error.get("msg", "invalid")})
            else:
                details.append(
                    {"path": f"{where}:{pointer.lstrip('/')}", "message": error.get("msg", "invalid")}
                )
        return _error_response(BadDataError(VALIDATION_MESSAGE, details=details))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error: SwitchmanError
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            # FastAPI's body parsing hit Python's recursion limit: valid JSON, nested too deep to read.
            error = BadDataError(
                "The request body is valid JSON nested too deeply to read.",
                details=[{"path": "/", "message": "nested too deeply"}],
            )
        elif exc.status_code == 404:
            error = NotFoundError(f"The path you were looking for ({request.url.path}) is not available.")
        elif exc.status_code == 413:
            error = ContentTooLargeError(str(exc.detail))
        elif exc.status_code == 405:
            error = MethodNotAllowedError(
                f"The method {request.method} is not allowed on {request.url.path}."
            )
            error.headers.update(exc.headers or {})
        else:
            error = SwitchmanError(str(exc.detail))
            return JSONResponse(error.body() | {"name": "HttpError"}, status_code=exc.status_code)
        return _error_response(error)

    async def unexpected_error(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return _error_response(SwitchmanError("Unexpected error; see the server log for the error id"))

    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
        SwitchmanError: switchman_error,
        RequestValidationError: validation_error,
        StarletteHTTPException: http_error,
        Exception: unexpected_error,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
