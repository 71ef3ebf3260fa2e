"""Logging set-up (text or JSON lines) and the structured request log.

The request log records method, path, status and duration; it never records headers or bodies, so no
credential or signal payload reaches the logs. The one path that carries a secret, Unleash's
`DELETE /api/admin/api-tokens/<secret>`, is logged with the secret part masked (`redact_path`).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchman.config import LogFormat
from switchman.metrics import request_finished

request_log = logging.getLogger("switchman.request")
_SECRET_IN_PATH = "/api/admin/api-tokens/"


def redact_path(path: str) -> str:
    """`path` without the secret of an API token in it: `…/api-tokens/*:*.****` (the scope part stays)."""
    if not path.startswith(_SECRET_IN_PATH):
        return path
    token = path[len(_SECRET_IN_PATH) :]
    scope, dot, _ = token.partition(".")
    return f"{_SECRET_IN_PATH}{scope if dot else ''}.****"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


def configure_logging(level: str, fmt: LogFormat) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt is LogFormat.JSON else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class RequestLogMiddleware:
    """Pure ASGI middleware: one log line per request, at INFO (DEBUG for /health), and its duration in
    the metrics by route template (`metrics.request_finished`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            request_finished(scope, status, elapsed)
            path = scope.get("path", "")
            level = logging.DEBUG if path == "/health" else logging.INFO
            if request_log.isEnabledFor(level):
                request_log.log(
                    level,
                    "request",
                    extra={
                        "fields": {
                            "method": scope.get("method"),
                            "path": redact_path(path),
                            "status": status,
                            "ms": round(elapsed * 1000, 2),
                        }
                    },
                )
