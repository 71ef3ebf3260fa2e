"""The web console (ADR 0026): server-rendered pages under `/ui/`, built from the services.

Every page needs a session (`sessions.resume`); without one, pages redirect to the sign-in form and htmx
fragments answer 401 with `HX-Redirect`. Every POST must carry the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`), else 403 and nothing changes. Every answer carries the console's
Content-Security-Policy (no inline script or style) and is not cached.
"""

from __future__ import annotations

import functools
import html
import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import jinja2
import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from switchman.action_sets import event_changes, event_store, policy, trace, undo
from switchman.action_sets import service as action_sets
from switchman.action_sets.schemas import CreateActionsSchema
from switchman.audit.log import list_events
from switchman.auth.access import check_permission
from switchman.auth.permissions import ADMIN
from switchman.console import sessions
from switchman.console.sessions import Session
from switchman.engine.operators import VALUE_OPERATORS
from switchman.engine.payload import flatten_payload
from switchman.engine.problems import pointer
from switchman.errors import SwitchmanError
from switchman.flags import features, projects, toggles
from switchman.runtime import runtime_of
from switchman.service_accounts import service as service_accounts
from switchman.signal_endpoints import queue
from switchman.signal_endpoints import service as signal_endpoints
from switchman.signal_endpoints.schemas import CreateSignalEndpointSchema, CreateSignalEndpointTokenSchema
from switchman.timeutil import iso

router = APIRouter(prefix="/ui", include_in_schema=False)

SESSION_COOKIE = "switchman_session"
SIGN_IN_COOKIE = "switchman_sign_in"  # the sign-in form's double-submit CSRF token
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
NAV = (
    ("/ui/", "Overview"),
    ("/ui/signal-endpoints", "Signal endpoints"),
    ("/ui/actions", "Action sets"),
    ("/ui/events/failed", "Events"),
    ("/ui/flags", "Flags"),
    ("/ui/service-accounts", "Service accounts"),
)
STATIC = {"htmx.min.js": "text/javascript", "console.js": "text/javascript", "console.css": "text/css"}
SIGNALS_SHOWN = 50
ACTIVITY_WINDOW = 5_000  # the overview counts among this many newest signals / runs, whatever the table size
EVENTS_PAGE = 20

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("switchman.console", "templates"),
    autoescape=True,  # every template: payloads and names are shown as text
)


def _secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    defaults: dict[str, Any] = {"principal": None, "csrf": None, "flash": None, "nav": NAV, "section": None}
    html = _templates.get_template(template).render(**{**defaults, **context})
    return _secure_headers(HTMLResponse(html, status_code=status_code))  # type: ignore[return-value]


def _page(
    session: Session, template: str, section: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return _render(
        template,
        status_code,
        principal=session.principal,
        csrf=session.csrf,
        can_write=session.principal.can(ADMIN),
        section=section,
        title=context.pop("title", section),
        **context,
    )


def _secure_cookie(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


async def _session(request: Request) -> Session | None:
    async with runtime_of(request).db.read() as conn:
        return await sessions.resume(conn, request.cookies.get(SESSION_COOKIE))


def _to_sign_in(request: Request) -> Response:
    if request.headers.get("hx-request"):
        return _secure_headers(Response(status_code=401, headers={"HX-Redirect": "/ui/sign-in"}))
    return _secure_headers(RedirectResponse("/ui/sign-in", status_code=303))


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body's fields (first value each); no multipart parser needed."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}


Handler = Callable[[Request, Session, dict[str, str]], Awaitable[Response]]


View = Callable[..., Awaitable[Response]]


def signed_in(view: View) -> View:
    """A page for a signed-in user: the session is resumed from the cookie and handed to `view` as
    `session`; without one, the browser is sent to sign in (htmx: 401 with `HX-Redirect`). FastAPI sees
    `view`'s parameters without `session`."""

    @functools.wraps(view)
    async def page(**params: Any) -> Response:
        session = await _session(params["request"])
        if session is None:
            return _to_sign_in(params["request"])
        return await view(session=session, **params)

    signature = inspect.signature(view)
    page.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[param for param in signature.parameters.values() if param.name != "session"]
    )
    return page


async def _guarded_post(request: Request, handler: Handler) -> Response:
    """A state-changing request: a session and its CSRF token are required; errors become pages."""
    session = await _session(request)
    if session is None:
        return _to_sign_in(request)
    form = await _form(request)
    presented = request.headers.get("x-csrf-token") or form.get("csrf_token")
    if not sessions.csrf_matches(presented, session.csrf):
        return _page(session, "error.html", "Overview", 403, title="Refused",
                     message="This request did not carry the page's security token (CSRF); nothing was changed.")  # fmt: skip
    try:
        return await handler(request, session, form)
    except SwitchmanError as exc:
        return _page(session, "error.html", "Overview", exc.status_code, title=exc.name, message=exc.message)


def _iso_now_minus(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


# --- sign-in ------------------------------------------------------------------------------------------------


@router.get("")
async def console_root() -> Response:
    return _secure_headers(RedirectResponse("/ui/", status_code=307))


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    if name not in STATIC:
        return _secure_headers(Response(status_code=404))
    content = resources.files("switchman.console").joinpath("static").joinpath(name).read_bytes()
    response = Response(content, media_type=STATIC[name], headers={"Cache-Control": "public, max-age=3600"})
    return _secure_headers(response)


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    token = sessions.new_secret()
    response = _render("signin.html", title="Sign in", pre_csrf=token, error=None)
    response.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict", secure=_secure_cookie(request),
                        path="/ui", max_age=3600)  # fmt: skip
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await _form(request)
    expected = request.cookies.get(SIGN_IN_COOKIE)
    if not expected or not sessions.csrf_matches(form.get("csrf_token"), expected):
        return _render("signin.html", 403, title="Sign in", pre_csrf=expected or "",
                       error="The form expired or did not come from this page; please try again.")  # fmt: skip
    try:
        async with runtime_of(request).db.transaction() as conn:
            session_id = await sessions.sign_in(conn, form.get("token", ""))
    except SwitchmanError:
        return _render("signin.html", 401, title="Sign in", pre_csrf=expected,
                       error="That token was not accepted: use an admin API token or a personal access token.")  # fmt: skip
    response = _secure_headers(RedirectResponse("/ui/", status_code=303))
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=_secure_cookie(request),
                        path="/ui", max_age=sessions.SESSION_HOURS * 3600)  # fmt: skip
    response.delete_cookie(SIGN_IN_COOKIE, path="/ui")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        async with runtime_of(request).db.transaction() as conn:
            await sessions.sign_out(conn, request.cookies.get(SESSION_COOKIE))
        response = _secure_headers(RedirectResponse("/ui/sign-in", status_code=303))
        response.delete_cookie(SESSION_COOKIE, path="/ui")
        return response

    return await _guarded_post(request, handler)


# --- overview -----------------------------------------------------------------------------------------------


async def _stats(request: Request) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        oldest = await queue.oldest_pending_at(conn)
        runs, failed = await action_sets.console_run_counts(
            conn, since=_iso_now_minus(1), window=ACTIVITY_WINDOW
        )
        return {
            "set_aside": await queue.set_aside_count(conn),
            "pending": await queue.pending_count(conn),
            "oldest_pending": oldest.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if oldest else None,
            "runs": runs,
            "failed": failed,
        }


@router.get("/")
@signed_in
async def overview(request: Request, session: Session) -> Response:
    since = _iso_now_minus(1)
    async with runtime_of(request).db.read() as conn:
        activity = await signal_endpoints.console_activity(conn, since=since, window=ACTIVITY_WINDOW)
        failed_runs = await action_sets.console_failed_runs(conn, limit=10)
        per_minute = await signal_endpoints.console_signals_per_minute(
            conn, since=since, minutes=60, window=ACTIVITY_WINDOW
        )
        outcomes = await action_sets.console_runs_per_minute(
            conn, since=since, minutes=60, window=ACTIVITY_WINDOW
        )
    per_endpoint: list[dict[str, Any]] = [{"name": name, "count": count} for name, count in activity]
    signal_charts = [_chart(name, {"signals": counts}) for name, counts in list(per_minute.items())[:8]]
    return _page(session, "overview.html", "Overview", stats=await _stats(request), per_endpoint=per_endpoint,
                 busiest=max((count for _, count in activity), default=1), failed_runs=failed_runs,
                 signal_charts=signal_charts, outcome_chart=_chart("Run outcomes", outcomes))  # fmt: skip


def _chart(label: str, series: Mapping[str, list[int]]) -> dict[str, Any]:
    """A per-minute bar chart as SVG rectangles (stacked series; drawn by the template, no script)."""
    minutes = max((len(values) for values in series.values()), default=0)
    totals = [sum(values[i] for values in series.values()) for i in range(minutes)]
    peak = max(totals, default=0) or 1
    height, width = 60.0, 6.0
    bars = []
    for minute in range(minutes):
        base = height
        for name, values in series.items():
            if values[minute]:
                size = max(1.0, values[minute] / peak * (height - 4))
                base -= size
                bars.append({"x": minute * (width + 2), "y": round(base, 1), "w": width, "h": round(size, 1),
                             "series": name, "count": values[minute], "minute": minutes - minute})  # fmt: skip
    return {"label": label, "bars": bars, "width": minutes * (width + 2), "height": height, "total": sum(totals),
            "peak": max(totals, default=0), "series": list(series)}  # fmt: skip


@router.get("/overview/stats")
@signed_in
async def overview_stats(request: Request, session: Session) -> Response:
    return _render("_overview_stats.html", stats=await _stats(request))


@router.get("/events/failed")
@signed_in
async def failed_runs(request: Request, session: Session) -> Response:
    async with runtime_of(request).db.read() as conn:
        found = await action_sets.console_failed_runs(conn, limit=100)
        set_aside = await signal_endpoints.list_set_aside_signals(conn, limit=100, offset=0)
    return _page(session, "failed.html", "Events", title="Failed runs", failed_runs=found,
                 set_aside=set_aside)  # fmt: skip


@router.post("/signals/{signal_id}/retry")
async def retry_signal(request: Request, signal_id: int) -> Response:
    """Put a set-aside signal back in the queue (ADR 0028), as the signed-in admin."""

    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        _require_admin(session)
        ctx = runtime_of(request)
        async with ctx.db.transaction() as conn:
            await signal_endpoints.retry_set_aside_signal(conn, session.principal, signal_id=signal_id)
            await ctx.wakeup.announce(conn)
        ctx.wakeup.committed()
        text = f"Signal {signal_id} is back in the queue."
        return _secure_headers(HTMLResponse(f'<p class="flash ok" role="status">{html.escape(text)}</p>'))

    return await _guarded_post(request, handler)


# --- signal endpoints ---------------------------------------------------------------------------------------


async def _endpoint_rows(request: Request) -> list[dict[str, Any]]:
    ctx = runtime_of(request)
    async with ctx.db.read() as conn:
        listed = await signal_endpoints.list_signal_endpoints(conn, base_url=ctx.settings.base_url)
        last = await signal_endpoints.console_last_signals(conn, [e.id for e in listed])
    return [{**e.model_dump(), "last_signal": last.get(e.id)} for e in listed]


@router.get("/signal-endpoints")
@signed_in
async def endpoints_page(request: Request, session: Session) -> Response:
    return _page(session, "endpoints.html", "Signal endpoints", endpoints=await _endpoint_rows(request),
                 form={}, errors={})  # fmt: skip


@router.post("/signal-endpoints")
async def create_endpoint(request: Request) -> Response:
    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        ctx = runtime_of(request)
        fields = {"name": form.get("name", "").strip(), "description": form.get("description") or None}
        try:
            payload = CreateSignalEndpointSchema.model_validate(fields)
        except ValueError:
            return _page(session, "endpoints.html", "Signal endpoints", 400, endpoints=await _endpoint_rows(request),
                         form=fields, errors={"name": "A name of letters, digits, '-' and '_', up to 255."})  # fmt: skip
        _require_admin(session)
        async with ctx.db.transaction() as conn:
            created = await signal_endpoints.create_signal_endpoint(
                conn, payload=payload, actor=session.principal, base_url=ctx.settings.base_url,
                limit=ctx.settings.signal_endpoints_limit,
            )  # fmt: skip
        return _secure_headers(RedirectResponse(f"/ui/signal-endpoints/{created.id}", status_code=303))

    return await _guarded_post(request, handler)


def _require_admin(session: Session) -> None:
    """The API's rule for these changes: ADMIN (a Viewer's session sees, cannot change)."""
    check_permission(session.principal, ADMIN)


async def _endpoint_page(request: Request, session: Session, endpoint_id: int, **extra: Any) -> Response:
    ctx = runtime_of(request)
    async with ctx.db.read() as conn:
        listed = await signal_endpoints.list_signal_endpoints(conn, base_url=ctx.settings.base_url)
        endpoint = next((e for e in listed if e.id == endpoint_id), None)
        if endpoint is None:
            return _page(session, "error.html", "Signal endpoints", 404, title="Not found",
                         message=f"There is no signal endpoint {endpoint_id}.")  # fmt: skip
        signals = await signal_endpoints.console_signals(
            conn, endpoint_id=endpoint_id, limit=SIGNALS_SHOWN, token_id=None, since=None
        )
    return _page(session, "endpoint.html", "Signal endpoints", title=endpoint.name, endpoint=endpoint.model_dump(),
                 signals=signals, created_token=extra.get("created_token"))  # fmt: skip


@router.get("/signal-endpoints/{endpoint_id}")
@signed_in
async def endpoint_page(request: Request, session: Session, endpoint_id: int) -> Response:
    return await _endpoint_page(request, session, endpoint_id)


@router.get("/signal-endpoints/{endpoint_id}/signals")
@signed_in
async def endpoint_signals(
    request: Request, session: Session, endpoint_id: int, token: str = "", since: str = ""
) -> Response:
    token_id = int(token) if token.isdigit() else None
    try:
        moment = datetime.fromisoformat(since).replace(tzinfo=UTC) if since.strip() else None
    except ValueError:
        moment = None
    try:
        async with runtime_of(request).db.read() as conn:
            found = await signal_endpoints.console_signals(
                conn, endpoint_id=endpoint_id, limit=SIGNALS_SHOWN, token_id=token_id, since=moment
            )
    except SwitchmanError:
        found = []
    return _render("_signals.html", signals=found)


@router.post("/signal-endpoints/{endpoint_id}/tokens")
async def create_token(request: Request, endpoint_id: int) -> Response:
    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        _require_admin(session)
        ctx = runtime_of(request)
        payload = CreateSignalEndpointTokenSchema.model_validate({"name": form.get("name", "").strip()})
        async with ctx.db.transaction() as conn:
            created = await signal_endpoints.create_signal_endpoint_token(
                conn, endpoint_id=endpoint_id, payload=payload, actor=session.principal,
                limit=ctx.settings.signal_tokens_per_endpoint_limit,
            )  # fmt: skip
        return await _endpoint_page(request, session, endpoint_id, created_token=created.model_dump())

    return await _guarded_post(request, handler)


@router.post("/signal-endpoints/{endpoint_id}/details")
async def edit_endpoint(request: Request, endpoint_id: int) -> Response:
    """Rename an endpoint or change its description (its senders must then use the new URL)."""

    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        _require_admin(session)
        ctx = runtime_of(request)
        fields = {"name": form.get("name", "").strip(), "description": form.get("description") or None}
        try:
            payload = CreateSignalEndpointSchema.model_validate(fields)
        except ValueError:
            return _page(session, "error.html", "Signal endpoints", 400, title="Not saved",
                         message="A name of lowercase letters, digits, '-' and '_', up to 255.")  # fmt: skip
        async with ctx.db.transaction() as conn:
            await signal_endpoints.update_signal_endpoint(
                conn,
                endpoint_id=endpoint_id,
                payload=payload,
                actor=session.principal,
                base_url=ctx.settings.base_url,
            )
        return _secure_headers(RedirectResponse(f"/ui/signal-endpoints/{endpoint_id}", status_code=303))

    return await _guarded_post(request, handler)


@router.post("/signal-endpoints/{endpoint_id}/{switch}")
async def switch_endpoint(request: Request, endpoint_id: int, switch: str) -> Response:
    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        if switch not in ("enable", "disable", "delete"):
            return _secure_headers(Response(status_code=404))
        _require_admin(session)
        ctx = runtime_of(request)
        async with ctx.db.transaction() as conn:
            if switch == "delete":
                await signal_endpoints.delete_signal_endpoint(
                    conn, endpoint_id=endpoint_id, actor=session.principal,
                    users=action_sets.enabled_sets_of_endpoint,
                )  # fmt: skip
                return _secure_headers(RedirectResponse("/ui/signal-endpoints", status_code=303))
            endpoint = await signal_endpoints.set_signal_endpoint_enabled(
                conn, endpoint_id=endpoint_id, enabled=switch == "enable", actor=session.principal,
                base_url=ctx.settings.base_url,
            )  # fmt: skip
        return _render("_endpoint_switch.html", endpoint=endpoint.model_dump(), can_write=True)

    return await _guarded_post(request, handler)


@router.post("/signal-endpoints/{endpoint_id}/tokens/{token_id}/delete")
async def delete_token(request: Request, endpoint_id: int, token_id: int) -> Response:
    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        _require_admin(session)
        async with runtime_of(request).db.transaction() as conn:
            await signal_endpoints.delete_signal_endpoint_token(
                conn, endpoint_id=endpoint_id, token_id=token_id, actor=session.principal
            )
        return _secure_headers(RedirectResponse(f"/ui/signal-endpoints/{endpoint_id}", status_code=303))

    return await _guarded_post(request, handler)


@router.get("/signals/{signal_id}")
@signed_in
async def signal_page(request: Request, session: Session, signal_id: int) -> Response:
    try:
        async with runtime_of(request).db.read() as conn:
            found = await trace.signal_trace(conn, signal_id)
            payload = await signal_endpoints.signal_payload(conn, signal_id)
    except SwitchmanError as exc:
        return _page(session, "error.html", "Events", exc.status_code, title="Not found", message=exc.message)
    pretty = orjson.dumps(orjson.loads(payload), option=orjson.OPT_INDENT_2).decode() if payload else ""
    return _page(session, "signal.html", "Events", title=f"Signal {signal_id}", trace=found, payload=pretty)


# --- action sets and their events ---------------------------------------------------------------------------


async def _project_ids(request: Request) -> list[str]:
    async with runtime_of(request).db.read() as conn:
        return [p.id for p in await projects.list_projects(conn)]


@router.get("/actions")
@signed_in
async def action_sets_page(request: Request, session: Session, project: str = "default") -> Response:
    ctx = runtime_of(request)
    try:
        async with ctx.db.read() as conn:
            listed = await action_sets.list_action_sets(conn, project=project)
            last = await action_sets.console_last_runs(conn, [int(s["id"]) for s in listed])
            names = {e.id: e.name for e in await signal_endpoints.list_signal_endpoints(conn, base_url="")}
    except SwitchmanError as exc:
        return _page(
            session, "error.html", "Action sets", exc.status_code, title="Not found", message=exc.message
        )
    rows = [
        {**s, "last_run": last.get(int(s["id"])), "source_name": names.get(s["match"]["sourceId"], "—")}
        for s in listed
    ]
    return _page(session, "action_sets.html", "Action sets", projects=await _project_ids(request), project=project,
                 action_sets=rows)  # fmt: skip


OPERATOR_MEANINGS = (
    ("IN", "equals one of the values"),
    ("NOT_IN", "equals none of the values"),
    ("STR_CONTAINS", "contains one of the values"),
    ("STR_STARTS_WITH", "starts with one of the values"),
    ("STR_ENDS_WITH", "ends with one of the values"),
    ("REGEX", "matches the regular expression (RE2)"),
    ("TOKEN_IN", "a tag string (a:b,c:d) holds one of the values"),
    ("NUM_EQ", "is the number"),
    ("NUM_GT", "is a number above the value"),
    ("NUM_GTE", "is a number at or above the value"),
    ("NUM_LT", "is a number below the value"),
    ("NUM_LTE", "is a number at or below the value"),
    ("DATE_AFTER", "is a date after the value"),
    ("DATE_BEFORE", "is a date before the value"),
    ("SEMVER_EQ", "is the version"),
    ("SEMVER_GT", "is a version above the value"),
    ("SEMVER_LT", "is a version below the value"),
)
ACTION_TYPES = (("TOGGLE_FEATURE_OFF", "Turn the flag off"), ("TOGGLE_FEATURE_ON", "Turn the flag on"))
FILTER_ROWS, ACTION_ROWS, PREVIEW_SIGNALS = 3, 2, 20


async def _form_lists(request: Request) -> dict[str, list[str]]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def _draft(project: str, form: Mapping[str, list[str]]) -> dict[str, Any]:
    """The `createActionsSchema` body the editor's fields describe (blank filter and action rows are left out)."""

    def field(name: str, index: int = 0) -> str:
        values = form.get(name, [])
        return values[index].strip() if index < len(values) else ""

    filters: dict[str, Any] = {}
    for index, key in enumerate(form.get("filter_key", [])):
        if not key.strip():
            continue
        operator = field("filter_operator", index) or "IN"
        values = [v.strip() for v in field("filter_values", index).split(",") if v.strip()]
        constraint: dict[str, Any] = {"operator": operator}
        if operator in VALUE_OPERATORS:
            constraint["value"] = values[0] if values else ""
        else:
            constraint["values"] = values
        if field("filter_inverted", index):
            constraint["inverted"] = True
        if field("filter_case", index):
            constraint["caseInsensitive"] = True
        filters[key.strip()] = constraint
    actions = [
        {"action": action, "sortOrder": index + 1, "executionParams": {
            "project": project, "environment": field("action_environment", index), "featureName": field("action_flag", index)}}
        for index, action in enumerate(form.get("action_type", []))
        if action.strip() and field("action_flag", index)
    ]  # fmt: skip
    source = field("source_id")
    actor = field("actor_id")
    return {
        "name": field("name"),
        "description": field("description") or None,
        "actorId": int(actor) if actor.isdigit() else 0,
        "match": {
            "source": "signal-endpoint",
            "sourceId": int(source) if source.isdigit() else 0,
            "payload": filters,
        },
        "actions": actions,
    }


def _rows_of(form: Mapping[str, list[str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def at(name: str, index: int) -> str:
        values = form.get(name, [])
        return values[index] if index < len(values) else ""

    filters = [
        {"key": at("filter_key", i), "operator": at("filter_operator", i) or "IN", "values": at("filter_values", i),
         "chips": [v.strip() for v in at("filter_values", i).split(",") if v.strip()], "error": "",
         "inverted": bool(at("filter_inverted", i)), "case_insensitive": bool(at("filter_case", i))}
        for i in range(max(FILTER_ROWS, len(form.get("filter_key", []))))
    ]  # fmt: skip
    actions = [
        {
            "action": at("action_type", i),
            "flag": at("action_flag", i),
            "environment": at("action_environment", i),
        }
        for i in range(max(ACTION_ROWS, len(form.get("action_type", []))))
    ]
    return filters, actions


async def _editor(
    request: Request,
    session: Session,
    project: str,
    form: Mapping[str, list[str]],
    *,
    status_code: int = 200,
    errors: list[dict[str, str]] | None = None,
    preview: dict[str, Any] | None = None,
    editing: int | None = None,
) -> Response:
    ctx = runtime_of(request)
    async with ctx.db.read() as conn:
        config = await action_sets.actions_config(conn, project=project)
        accounts, _roles = await service_accounts.list_service_accounts(conn)
        endpoints = await signal_endpoints.list_signal_endpoints(conn, base_url="")
    options = _config_options(config)
    filter_rows, action_rows = _rows_of(form)
    errors = _place_errors(filter_rows, errors or [])
    flat = {key: values[0] for key, values in form.items() if values}
    title = f"Edit {flat.get('name', '')}" if editing is not None else "New action set"
    return _page(session, "editor.html", "Action sets", status_code, title=title, project=project, editing=editing,
                 form=flat, errors=errors, preview=preview, filter_rows=filter_rows, action_rows=action_rows,
                 operators=OPERATOR_MEANINGS, action_types=ACTION_TYPES, flags=options["featureName"],
                 environments=options["environment"], accounts=[a.model_dump() for a in accounts],
                 endpoints=[e.model_dump() for e in endpoints])  # fmt: skip


def _place_errors(rows: list[dict[str, Any]], errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """Put each error about a filter next to its row (`error`); the others are returned for the top."""
    rest = []
    for error in errors:
        path = error.get("path", "")
        row = next(
            (
                r
                for r in rows
                if r["key"].strip()
                and f"/payload{pointer(r['key'].strip())}" in path.replace("/actionSet", "")
            ),
            None,
        )
        if row is None:
            rest.append(error)
        else:
            row["error"] = "; ".join(filter(None, (row["error"], error.get("message", ""))))
    return rest


def _config_options(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The flag and environment options of `actionDefinitionsConfigSchema` (what the config endpoint lists)."""
    found: dict[str, list[str]] = {"featureName": [], "environment": []}
    for definition in config.values():
        for parameter in definition.get("parameters", []) if isinstance(definition, Mapping) else []:
            name = parameter.get("name")
            if name in found and not found[name]:
                found[name] = [str(option) for option in parameter.get("options", [])]
    return found


@router.get("/projects/{project}/actions/new")
@signed_in
async def new_action_set(request: Request, session: Session, project: str) -> Response:
    try:
        return await _editor(request, session, project, {})
    except SwitchmanError as exc:
        return _page(
            session, "error.html", "Action sets", exc.status_code, title="Not found", message=exc.message
        )


def _form_of(record: Any) -> dict[str, list[str]]:
    """The editor's fields for a saved set (the inverse of `_draft`)."""
    form: dict[str, list[str]] = {
        "name": [record.name], "description": [record.description or ""], "actor_id": [str(record.actor_id)],
        "source_id": [str(record.source_id)],
    }  # fmt: skip
    for key, constraint in (record.filters or {}).items():
        values = constraint.get("values") if "values" in constraint else [constraint.get("value", "")]
        form.setdefault("filter_key", []).append(str(key))
        form.setdefault("filter_operator", []).append(str(constraint.get("operator", "IN")))
        form.setdefault("filter_values", []).append(", ".join(str(v) for v in values or []))
        form.setdefault("filter_inverted", []).append("yes" if constraint.get("inverted") else "")
        form.setdefault("filter_case", []).append("insensitive" if constraint.get("caseInsensitive") else "")
    for action in record.actions:
        params = action.execution_params
        form.setdefault("action_type", []).append(action.action)
        form.setdefault("action_flag", []).append(str(params.get("featureName", "")))
        form.setdefault("action_environment", []).append(str(params.get("environment", "")))
    return form


@router.get("/projects/{project}/actions/{action_set_id}/edit")
@signed_in
async def edit_action_set(request: Request, session: Session, project: str, action_set_id: int) -> Response:
    try:
        async with runtime_of(request).db.read() as conn:
            record = await action_sets.require_action_set(conn, project=project, action_set_id=action_set_id)
        return await _editor(request, session, project, _form_of(record), editing=action_set_id)
    except SwitchmanError as exc:
        return _page(
            session, "error.html", "Action sets", exc.status_code, title="Not found", message=exc.message
        )


@router.get("/projects/{project}/actions/keys")
@signed_in
async def suggested_keys(request: Request, session: Session, project: str, source_id: str = "") -> Response:
    """The keys of the source's latest payloads, flattened as the engine flattens them (for the editor)."""
    keys: set[str] = set()
    if source_id.isdigit():
        async with runtime_of(request).db.read() as conn:
            try:
                payloads = await signal_endpoints.recent_signal_payloads(
                    conn, endpoint_id=int(source_id), limit=20
                )
            except SwitchmanError:
                payloads = []
        for payload in payloads:
            keys.update(flatten_payload(payload))
    return _render("_keys.html", keys=sorted(keys)[:500])


async def _preview(request: Request, project: str, form: Mapping[str, list[str]]) -> dict[str, Any] | None:
    draft = _draft(project, form)
    if not draft["match"]["sourceId"]:
        return None
    draft["name"] = draft["name"] or "preview"
    draft["actorId"] = draft["actorId"] or 1
    try:
        schema = CreateActionsSchema.model_validate(draft)
        async with runtime_of(request).db.read() as conn:
            result = await action_sets.backtest(conn, project=project, action_set_id=None, draft=schema,
                                                limit=PREVIEW_SIGNALS, since=None, until=None)  # fmt: skip
    except ValidationError:
        return {"error": "a filter is not complete yet"}
    except SwitchmanError as exc:
        return {"error": exc.message, "details": [{"path": str(d.get("path", "")), "message": str(d.get("message", ""))}
                                                   for d in exc.details or []]}  # fmt: skip
    return {"signals": result["signals"], "matched": result["matched"],
            "runs": [run["signalId"] for run in result["runs"]], "not_matched": result["notMatched"]}  # fmt: skip


@router.post("/projects/{project}/actions/preview")
async def preview_action_set(request: Request, project: str) -> Response:
    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        lists = await _form_lists(request)
        preview = await _preview(request, project, lists)
        rows, _actions = _rows_of(lists)
        if preview is not None and preview.get("details"):
            left = _place_errors(rows, preview["details"])
            preview["error"] = "; ".join(f"{e['path']}: {e['message']}" for e in left) if left else ""
        return _render("_preview.html", preview=preview, filter_rows=rows, oob=True)

    return await _guarded_post(request, handler)


@router.post("/projects/{project}/actions")
async def create_action_set(request: Request, project: str) -> Response:
    return await _save(request, project, None)


@router.post("/projects/{project}/actions/{action_set_id}")
async def update_action_set(request: Request, project: str, action_set_id: int) -> Response:
    return await _save(request, project, action_set_id)


async def _save(request: Request, project: str, action_set_id: int | None) -> Response:
    """Create (`action_set_id` None) or replace a set from the editor's fields; the form again with the
    errors next to it when the service refuses."""

    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        _require_admin(session)
        lists = await _form_lists(request)
        try:
            schema = CreateActionsSchema.model_validate(_draft(project, lists))
        except ValidationError as exc:
            errors = [
                {"path": "/" + "/".join(str(part) for part in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ]
            return await _editor(
                request, session, project, lists, status_code=400, errors=errors, editing=action_set_id
            )
        ctx = runtime_of(request)
        try:
            async with ctx.db.transaction() as conn:
                if action_set_id is None:
                    saved = await action_sets.create_action_set(
                        conn,
                        project=project,
                        payload=schema,
                        principal=session.principal,
                        settings=ctx.settings,
                    )
                else:
                    saved = await action_sets.update_action_set(
                        conn, project=project, action_set_id=action_set_id, payload=schema,
                        principal=session.principal, settings=ctx.settings,
                    )  # fmt: skip
        except SwitchmanError as exc:
            errors = [
                {"path": str(d.get("path", "")), "message": str(d.get("message", ""))}
                for d in exc.details or []
            ]
            return await _editor(request, session, project, lists, status_code=exc.status_code,
                                 errors=errors or [{"path": "", "message": exc.message}], editing=action_set_id)  # fmt: skip
        return _secure_headers(
            RedirectResponse(f"/ui/projects/{project}/actions/{saved['id']}", status_code=303)
        )

    return await _guarded_post(request, handler)


@router.get("/projects/{project}/actions/{action_set_id}")
@signed_in
async def events_page(
    request: Request, session: Session, project: str, action_set_id: int, before: int | None = None
) -> Response:
    try:
        async with runtime_of(request).db.read() as conn:
            record = await action_sets.require_action_set(conn, project=project, action_set_id=action_set_id)
            page = orjson.loads(
                await event_store.list_event_docs(
                    conn, project=project, action_set_id=action_set_id, limit=EVENTS_PAGE, offset=0,
                    before=before, cache=None,
                )
            )  # fmt: skip
    except SwitchmanError as exc:
        return _page(
            session, "error.html", "Action sets", exc.status_code, title="Not found", message=exc.message
        )
    events = page["actionSetEvents"]
    async with runtime_of(request).db.read() as conn:
        for event in events:
            event["payload_text"] = orjson.dumps(
                event["signal"]["payload"], option=orjson.OPT_INDENT_2
            ).decode()
            undone = await event_changes.undo_of(conn, int(event["id"]))
            event["undone"] = (
                {"by": undone.undone_by, "at": iso(undone.created_at)} if undone is not None else None
            )
        policy_text = await _policy_text(conn, project, action_set_id)
    older = events[-1]["id"] if len(events) == EVENTS_PAGE else None
    action_set = {
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "enabled": record.enabled,
    }
    embedded = runtime_of(request).settings.flag_backend == "embedded"
    return _page(session, "events.html", "Action sets", title=record.name, project=project, action_set=action_set,
                 events=events, older=older, policy=policy_text, can_undo=embedded)  # fmt: skip


async def _policy_text(conn: Any, project: str, action_set_id: int) -> list[str]:
    """The set's policy (ADR 0023 to 0025) in words; empty without one."""
    try:
        found = await policy.get_policy(conn, project=project, action_set_id=action_set_id)
    except SwitchmanError:
        return []
    words = []
    if found["shadow"]:
        words.append("shadow mode: decides and traces, changes no flag")
    if found["cooldownSeconds"]:
        words.append(f"at most one run per {found['cooldownSeconds']} s")
    if found["windowCount"]:
        words.append(
            f"runs once {found['windowCount']} matching signals arrived within {found['windowSeconds']} s"
        )
    if found["perAlert"]:
        words.append(f"counted per alert ({found['alertKey'] or 'the alert id of the sender format'})")
    if found["restoreOnResolve"]:
        words.append("puts back what it changed when the alert resolves")
    if found["revertAfterSeconds"]:
        words.append(
            f"puts back what it changed {found['revertAfterSeconds']} s after the last matching signal"
        )
    if found["maxChangesPerHour"]:
        words.append(f"at most {found['maxChangesPerHour']} flag changes per hour")
    return words


@router.post("/projects/{project}/actions/{action_set_id}/events/{event_id}/undo")
async def undo_run(request: Request, project: str, action_set_id: int, event_id: int) -> Response:
    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        ctx = runtime_of(request)
        async with ctx.db.transaction() as conn:
            result = await undo.undo_event(
                conn, project=project, action_set_id=action_set_id, event_id=event_id, principal=session.principal,
                embedded=ctx.settings.flag_backend == "embedded",
            )  # fmt: skip
        back = ", ".join(f"{r['featureName']} in {r['environment']} back {'on' if r['enabled'] else 'off'}"
                         for r in result["restored"]) or "nothing to put back"  # fmt: skip
        skipped = "; ".join(f"{s['featureName']}: {s['reason']}" for s in result["skipped"])
        text = f"Event {event_id} undone: {back}" + (f" (skipped: {skipped})" if skipped else "")
        return _secure_headers(HTMLResponse(f'<p class="flash ok" role="status">{html.escape(text)}</p>'))

    return await _guarded_post(request, handler)


@router.post("/projects/{project}/actions/{action_set_id}/{switch}")
async def switch_action_set(request: Request, project: str, action_set_id: int, switch: str) -> Response:
    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        if switch not in ("enable", "disable"):
            return _secure_headers(Response(status_code=404))
        _require_admin(session)
        async with runtime_of(request).db.transaction() as conn:
            await action_sets.set_action_set_enabled(
                conn, project=project, action_set_id=action_set_id, enabled=switch == "enable",
                principal=session.principal,
            )  # fmt: skip
            record = await action_sets.require_action_set(conn, project=project, action_set_id=action_set_id)
        row = {"id": record.id, "name": record.name, "enabled": record.enabled}
        return _render("_action_set_switch.html", s=row, project=project, can_write=True)

    return await _guarded_post(request, handler)


# --- flags --------------------------------------------------------------------------------------------------


async def _flag_rows(conn: Any, project: str) -> tuple[list[str], list[dict[str, Any]]]:
    listed = await features.list_features(conn, project=project)
    environments: list[str] = []
    rows = []
    for flag in listed:
        states = {env.name: bool(env.enabled) for env in flag.environments}
        for name in states:
            if name not in environments:
                environments.append(name)
        rows.append(
            {
                "name": flag.name,
                "environments": states,
                "tags": [f"{tag.type}:{tag.value}" for tag in flag.tags],
            }
        )
    return sorted(environments), rows


@router.get("/flags")
@signed_in
async def flags_page(request: Request, session: Session, project: str = "default") -> Response:
    ctx = runtime_of(request)
    embedded = ctx.settings.flag_backend == "embedded"
    try:
        async with ctx.db.read() as conn:
            environments, rows = await _flag_rows(conn, project) if embedded else ([], [])
            audit, _total = await list_events(conn, project=project, limit=50)
    except SwitchmanError as exc:
        return _page(session, "error.html", "Flags", exc.status_code, title="Not found", message=exc.message)
    return _page(session, "flags.html", "Flags", projects=await _project_ids(request), project=project,
                 embedded=embedded, environments=environments, flags=rows, audit=audit)  # fmt: skip


@router.post("/flags/{project}/{feature_name}/{environment}/{state}")
async def switch_flag(
    request: Request, project: str, feature_name: str, environment: str, state: str
) -> Response:
    async def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
        if state not in ("on", "off"):
            return _secure_headers(Response(status_code=404))
        async with runtime_of(request).db.transaction() as conn:
            await toggles.set_feature_enabled(
                conn, actor=session.principal, project=project, feature_name=feature_name,
                environment=environment, enabled=state == "on",
            )  # fmt: skip
        flag = {"name": feature_name, "environments": {environment: state == "on"}}
        return _render("_flag_switch.html", flag=flag, env=environment, project=project, can_write=True)

    return await _guarded_post(request, handler)


# --- service accounts ---------------------------------------------------------------------------------------


@router.get("/service-accounts")
@signed_in
async def service_accounts_page(request: Request, session: Session) -> Response:
    async with runtime_of(request).db.read() as conn:
        accounts, roles = await service_accounts.list_service_accounts(conn)
    role_names: Mapping[int, str] = {r.id: r.name for r in roles}
    rows = [
        {"name": a.name, "username": a.username, "role": role_names.get(a.root_role, "—"), "createdAt": a.created_at,
         "tokens": [{"description": pat.description, "expiresAt": pat.expires_at} for pat in a.tokens]}
        for a in accounts
    ]  # fmt: skip
    return _page(session, "service_accounts.html", "Service accounts", accounts=rows)
