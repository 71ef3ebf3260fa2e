"""The events listing's hot path: `GET …/projects/{projectId}/actions/{id}/events` as raw ASGI.

Profiled under load (ADR 0011), FastAPI's route matching over all the app's routes, its dependency
solving and its middleware stack cost more per listing than the listing itself once the page and the
credential come from their caches. `EventsListingFastPath` answers the plain successful case directly:
an admin credential, an action set of the project, a page without a `before` cursor. Every other case
(no or bad credential, not an admin, unknown project or set, a cursor, any error at all) goes on down the
normal FastAPI stack unchanged, which answers it as before, so status codes and error bodies cannot
differ. A listing is a read, so trying here and then handing over is safe.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from switchman import metrics
from switchman.action_sets import event_store
from switchman.auth.permissions import ADMIN
from switchman.auth.service import authorize_admin_api
from switchman.errors import SwitchmanError
from switchman.http import normalize_limit, normalize_offset, parse_path_id
from switchman.runtime import runtime_of_scope

ROUTE = "/api/admin/projects/{projectId}/actions/{id}/events"  # the router's template, for the metrics
_PREFIX = "/api/admin/projects/"
_SUFFIX = "/events"
_HEADERS = [(b"content-type", b"application/json")]


def _match(path: str) -> tuple[str, str] | None:
    """(projectId, id) when `path` is exactly …/projects/{projectId}/actions/{id}/events."""
    if not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
        return None
    parts = path[len(_PREFIX) : -len(_SUFFIX)].split("/")
    if len(parts) != 3 or parts[1] != "actions" or not parts[0] or not parts[2]:
        return None
    return parts[0], parts[2]


class EventsListingFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            matched = _match(scope["path"])
            if matched is not None:
                body = await _listing(scope, *matched)
                if body is not None:
                    scope[metrics.ROUTE_TEMPLATE] = ROUTE
                    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


async def _listing(scope: Scope, project: str, raw_id: str) -> bytes | None:
    """The page, or None to let the normal stack answer (errors, cursors, anything unusual)."""
    authorization = next((value for key, value in scope["headers"] if key == b"authorization"), None)
    if authorization is None:
        return None
    ctx = runtime_of_scope(scope)
    try:
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if "before" in params:
            return None
        await authorize_admin_api(
            ctx.db, authorization.decode("latin-1"), ctx.principal_cache, permission=ADMIN
        )
        set_id = parse_path_id(raw_id, "action set")
        async with ctx.db.read() as conn:
            return await event_store.list_event_docs(
                conn,
                project=project,
                action_set_id=set_id,
                limit=normalize_limit(params.get("limit")),
                offset=normalize_offset(params.get("offset")),
                cache=ctx.event_page_cache,
            )
    except SwitchmanError:
        return None
