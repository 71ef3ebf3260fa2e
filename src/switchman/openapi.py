"""What `/openapi.json` says about errors: every error a route can answer is documented, with one body.

FastAPI documents only the success response (and a 422 switchman never sends). `document_errors` walks
the route table once, when the document is first built, and gives each operation the error responses
the layers in front of its handler can produce, all with Unleash's error body (`errorSchema`):

- 400 when the operation takes parameters or a body (request validation; a bad Content-Length);
- 401 and 403 when the route authenticates its caller (`current_principal` among its dependencies);
- 404 when the path has parameters (the object they name does not exist);
- 413 and 415 where `AdminBodyGuard` looks at the body (`admin_body_guarded`);
- whatever the route declares itself in `responses=` (409 for names in use, 503, …), given the body.

Bodyless successes (handlers returning a bare `Response`) are documented without content, so that the
document does not promise a JSON body that is never sent. Operations that take no credential
(`PUBLIC_OPERATIONS`) say so with `security: []`.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from switchman.auth.dependencies import current_principal

ERROR_SCHEMA_NAME = "errorSchema"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
MODEL_REF = "#/components/schemas/{model}"


def model_components(*models: type[BaseModel]) -> dict[str, Any]:
    """Component schemas for models FastAPI does not see (bodies read or written by hand), named by class
    as FastAPI names its own; app.py merges them into the document."""
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(by_alias=True, ref_template=MODEL_REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def model_ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": MODEL_REF.format(model=model.__name__)}


PUBLIC_OPERATIONS = frozenset({"getHealth"})

# Unleash's error body: `{id, name, message, details}`; some errors add fields (`path`, `permissions`, …).
# Only `message` is required: Unleash answers the SDK (client API) token errors with `{message}` alone.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Unleash's error body (`{message}` alone for the client API's 401 and 403).",
    "required": ["message"],
    "additionalProperties": True,
    "properties": {
        "id": {"type": "string", "format": "uuid", "description": "Unique id of this error instance."},
        "name": {"type": "string", "description": "The kind of error, e.g. `BadDataError`."},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": True,
                "properties": {"message": {"type": "string"}, "path": {"type": "string"}},
                "required": ["message"],
            },
        },
    },
}

DESCRIPTIONS: dict[int, str] = {
    400: "The request is invalid: its parameters or body do not validate (see `details`).",
    401: "No credential, or one that is not valid.",
    403: "The credential may not do this (a client token on the admin API, or a missing permission).",
    404: "The object named in the path does not exist.",
    405: "The method is not allowed on this path.",
    409: "The name or object is already in use.",
    413: "The request body is larger than allowed.",
    415: "The request body is not JSON (`Content-Type` must be `application/json`).",
    429: "Too many requests; see `Retry-After`.",
    503: "The service cannot answer now (the database, or shutting down).",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can answer these error codes beyond the ones added for every route."""
    return {code: {"description": DESCRIPTIONS.get(code, "Error.")} for code in codes}


def admin_body_guarded(method: str, path: str) -> bool:
    """True when `AdminBodyGuard` checks the body's size and content type (413/415) on this request."""
    return (
        method in {"POST", "PUT", "PATCH"}
        and path.startswith("/api/admin/")
        and not path.endswith(("/on", "/off"))  # bodyless toggles accept any content type
    )


def document_errors(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """Add the error responses (see the module docstring) to `schema`, in place; returns it."""
    schema.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    paths: dict[str, Any] = schema.setdefault("paths", {})
    api_routes = {route.operation_id: route for route in api_routes_of(routes) if route.operation_id}
    for path, item in paths.items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            responses.pop("422", None)  # validation errors are 400 here, as in Unleash
            route = api_routes.get(str(operation.get("operationId")))
            codes: set[int] = set()
            if operation.get("parameters") or "requestBody" in operation:
                codes.add(400)
            if "{" in path:
                codes.add(404)
            if admin_body_guarded(method.upper(), path):
                codes |= {400, 413, 415}
            if route is not None and _authenticates(route.dependant):
                codes |= {401, 403}
            if operation.get("operationId") in PUBLIC_OPERATIONS:
                operation["security"] = []
            for code in codes:
                responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
            bodyless = route is not None and _bodyless(route)
            for status, response in responses.items():
                if status[:1] in {"4", "5"}:
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
                elif bodyless and status[:1] == "2":
                    response.pop("content", None)
            operation["responses"] = dict(sorted(responses.items()))
    return schema


def api_routes_of(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every FastAPI route, also inside included routers (FastAPI keeps those as lazy wrappers)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
            continue
        router = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        if router is not None:
            yield from api_routes_of(router.routes)


def _authenticates(dependant: Dependant) -> bool:
    return any(dep.call is current_principal or _authenticates(dep) for dep in dependant.dependencies)


def _bodyless(route: APIRoute) -> bool:
    """A handler typed to return a bare `Response`, with no response model, no declared success body and
    no JSON response class, sends no body."""
    if route.response_model is not None or any(str(code).startswith("2") for code in route.responses):
        return False
    if isinstance(route.response_class, type) and issubclass(route.response_class, JSONResponse):
        return False
    try:
        hints = typing.get_type_hints(route.endpoint)
    except Exception:  # unresolvable annotations: assume a body
        return False
    return hints.get("return") is Response
