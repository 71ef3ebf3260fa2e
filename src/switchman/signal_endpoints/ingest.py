"""`POST /api/signal-endpoint/{name}`: the lean ingestion route (plain Starlette)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

# Plain Starlette routes added to the app next to the FastAPI routers.
routes: list[BaseRoute] = []
# OpenAPI path items for the routes above, merged into /openapi.json.
openapi_paths: dict[str, Any] = {}
