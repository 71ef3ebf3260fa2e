"""`/api/admin/projects/{projectId}/actions` routes (spec §4.6 to §4.8). ADMIN for all, reads included.

Path ids are declared as strings (as in Unleash's spec) and parsed by the handlers, so `config` or
any other non-integer id answers 404 rather than a validation error.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets import event_store, policy, project_budget, service, trace, undo
from switchman.action_sets.schemas import (
    ActionDefinitionsConfigSchema,
    ActionSetEventsSchema,
    ActionSetPolicyResultSchema,
    ActionSetPolicySchema,
    ActionSetWarningsSchema,
    ActionsListSchema,
    ActionsSchema,
    BacktestActionsResultSchema,
    BacktestActionsSchema,
    CreateActionsSchema,
    DecisionsSchema,
    ExplainActionsResultSchema,
    ExplainActionsSchema,
    GetActionsEventsRequestForbiddenError,
    GetActionsEventsRequestNotFoundError,
    GetActionsEventsRequestUnauthorizedError,
    ProjectActionBudgetResultSchema,
    ProjectActionBudgetSchema,
    SignalTraceSchema,
    UndoActionSetEventResultSchema,
)
from switchman.auth.dependencies import AdminPrincipal
from switchman.flags.backend import FlagCatalog
from switchman.http import RawJSONResponse, normalize_limit, normalize_offset, parse_path_id
from switchman.openapi import error_responses
from switchman.runtime import runtime_of

router = APIRouter(prefix="/api/admin/projects", tags=["Projects"])
signals_router = APIRouter(prefix="/api/admin/signals", tags=["Signals"])

ProjectId = Annotated[str, Path(alias="projectId", description="The project id, e.g. `default`.")]
ActionSetId = Annotated[str, Path(alias="id", description="The action set id.")]

_ENTERPRISE = "**Enterprise feature** **[BETA]** This API is in beta state, which means it may change or be "
_ENTERPRISE += "removed in the future. "


def _describe(text: str) -> str:
    return _ENTERPRISE + text


@router.get(
    "/{projectId}/actions",
    operation_id="get-actions",
    summary="[BETA] Get all action sets.",
    description=_describe("Returns the action sets of the project, ascending id."),
    response_model=ActionsListSchema,
)
async def get_actions(request: Request, project_id: ProjectId, _principal: AdminPrincipal) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return {"actions": await service.list_action_sets(conn, project=project_id)}


@router.post(
    "/{projectId}/actions",
    operation_id="create-actions",
    responses=error_responses(409),
    summary="[BETA] Create an action set.",
    description=_describe("Creates a new action set."),
    status_code=201,
    response_model=ActionsSchema,
)
async def create_actions(
    request: Request,
    response: Response,
    project_id: ProjectId,
    payload: CreateActionsSchema,
    principal: AdminPrincipal,
) -> dict[str, Any]:
    ctx = runtime_of(request)
    async with ctx.db.transaction() as conn:
        created = await service.create_action_set(
            conn, project=project_id, payload=payload, principal=principal, settings=ctx.settings
        )
        await _announce_warnings(request, response, conn, created)
    response.headers["Location"] = f"actions/{created['id']}"
    return created


@router.get(
    "/{projectId}/actions/config",
    operation_id="get-actions-config",
    summary="[BETA] Get the action definitions.",
    description=_describe(
        "Returns the available action types with their parameters; `select` parameters list the "
        "project's environments, flags and tags as options."
    ),
    response_model=ActionDefinitionsConfigSchema,
    response_model_exclude_none=True,
)
async def get_actions_config(
    request: Request, project_id: ProjectId, _principal: AdminPrincipal
) -> dict[str, object]:
    ctx = runtime_of(request)
    backend = ctx.flag_backend
    if isinstance(backend, FlagCatalog):  # a remote Unleash: its options, read outside the transaction
        async with ctx.db.read() as conn:
            await service.require_project(conn, project_id)
        return await service.remote_actions_config(backend, project=project_id)
    async with ctx.db.read() as conn:
        return await service.actions_config(conn, project=project_id)


@router.put(
    "/{projectId}/actions/{id}",
    operation_id="update-actions",
    responses=error_responses(409),
    summary="[BETA] Update an action set.",
    description=_describe("Replaces an action set; its actions are re-created with new ids."),
    response_model=ActionsSchema,
)
async def update_actions(
    request: Request,
    response: Response,
    project_id: ProjectId,
    action_set_id: ActionSetId,
    payload: CreateActionsSchema,
    principal: AdminPrincipal,
) -> dict[str, Any]:
    ctx = runtime_of(request)
    async with ctx.db.transaction() as conn:
        updated = await service.update_action_set(
            conn,
            project=project_id,
            action_set_id=parse_path_id(action_set_id, "action set"),
            payload=payload,
            principal=principal,
            settings=ctx.settings,
        )
        await _announce_warnings(request, response, conn, updated)
    return updated


@router.delete(
    "/{projectId}/actions/{id}",
    operation_id="delete-actions",
    summary="[BETA] Delete an action set.",
    description=_describe("Deletes an action set and its actions. Its events are no longer listed."),
    status_code=200,
    response_class=Response,
)
async def delete_actions(
    request: Request, project_id: ProjectId, action_set_id: ActionSetId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await service.delete_action_set(
            conn,
            project=project_id,
            action_set_id=parse_path_id(action_set_id, "action set"),
            principal=principal,
        )
    return Response(status_code=200)


async def _set_enabled(request: Request, project: str, raw_id: str, principal: Any, enabled: bool) -> Any:
    async with runtime_of(request).db.transaction() as conn:
        return await service.set_action_set_enabled(
            conn,
            project=project,
            action_set_id=parse_path_id(raw_id, "action set"),
            enabled=enabled,
            principal=principal,
        )


@router.post(
    "/{projectId}/actions/{id}/on",
    operation_id="enable-actions",
    summary="[BETA] Enable an action set.",
    description=_describe("Enables an action set. No request body."),
    response_model=ActionsSchema,
)
async def enable_actions(
    request: Request, project_id: ProjectId, action_set_id: ActionSetId, principal: AdminPrincipal
) -> dict[str, Any]:
    result: dict[str, Any] = await _set_enabled(request, project_id, action_set_id, principal, True)
    return result


@router.post(
    "/{projectId}/actions/{id}/off",
    operation_id="disable-actions",
    summary="[BETA] Disable an action set.",
    description=_describe("Disables an action set. No request body."),
    response_model=ActionsSchema,
)
async def disable_actions(
    request: Request, project_id: ProjectId, action_set_id: ActionSetId, principal: AdminPrincipal
) -> dict[str, Any]:
    result: dict[str, Any] = await _set_enabled(request, project_id, action_set_id, principal, False)
    return result


_LIMIT_DESCRIPTION = "The number of results to return in a page. By default it is set to 50."
_OFFSET_DESCRIPTION = "The number of results to skip when returning a page. By default it is set to 0."
_BEFORE_DESCRIPTION = (
    "switchman extension: an event id of this action set; the page starts just below (older than) "
    "that event, so pages stay stable while new events arrive. `offset` then counts from there."
)


@router.get(
    "/{projectId}/actions/{id}/events",
    operation_id="get-actions-events",
    summary="[BETA] Get action events for a specific action set.",
    description=_describe(
        "Returns a list of action events triggered by a specific action set, identified by its id."
    ),
    response_class=RawJSONResponse,
    responses={
        200: {"model": ActionSetEventsSchema, "description": "#/components/schemas/actionSetEventsSchema"},
        401: {
            "model": GetActionsEventsRequestUnauthorizedError,
            "description": "Authorization information is missing or invalid. Provide a valid API token as the "
            "`authorization` header, e.g. `authorization:*.*.my-admin-token`.",
        },
        403: {
            "model": GetActionsEventsRequestForbiddenError,
            "description": "The provided user credentials are valid, but the user does not have the necessary "
            "permissions to perform this operation",
        },
        404: {
            "model": GetActionsEventsRequestNotFoundError,
            "description": "The requested resource was not found.",
        },
    },
)
async def get_actions_events(
    request: Request,
    project_id: ProjectId,
    action_set_id: ActionSetId,
    _principal: AdminPrincipal,
    limit: Annotated[str | None, Query(description=_LIMIT_DESCRIPTION)] = None,
    offset: Annotated[str | None, Query(description=_OFFSET_DESCRIPTION)] = None,
    before: Annotated[str | None, Query(description=_BEFORE_DESCRIPTION)] = None,
) -> Response:
    # Lean path: stored JSON documents are concatenated; no per-row model work. The common successful
    # case is usually answered before this route by `listing_fast_path.EventsListingFastPath`.
    set_id = parse_path_id(action_set_id, "action set")
    cursor = normalize_offset(before) or None  # invalid or absent: no cursor
    ctx = runtime_of(request)
    async with ctx.db.read() as conn:
        body = await event_store.list_event_docs(
            conn,
            project=project_id,
            action_set_id=set_id,
            limit=normalize_limit(limit),
            offset=normalize_offset(offset),
            before=cursor,
            cache=ctx.event_page_cache,
        )
    return RawJSONResponse(body)


_POLICY_DOC = (
    "switchman's addition (ADR 0023): what may run the set once its filters passed. `cooldownSeconds`: at "
    "most one run within the period (a flap guard); `windowCount`/`windowSeconds`: run only once that many "
    "matching signals arrived within the period; `perAlert`: count those per alert identity (the sender "
    "format's `@switchman.alertId`, or the payload key `alertKey`); `shadow`: decide and trace, never "
    "change a flag; `restoreOnResolve` (with `perAlert`): the alert's resolution puts back what the set's "
    "run for it changed (ADR 0024); `maxChangesPerHour`: a change budget — an action beyond it fails, "
    "saying so (ADR 0024); `revertAfterSeconds`: a time box — the run is put back once no matching signal "
    "renewed it for that long (ADR 0025). Held-back signals are traced as `suppressed`, shadow runs as "
    "`shadow`, put-backs as `restored` / `reverted`. A set without a policy runs on every match, as "
    "Unleash's."
)

_BUDGET_DOC = (
    "switchman's addition (ADR 0024): at most `maxChangesPerHour` flag changes per hour by all of the "
    "project's action sets together, beside each set's own budget; an action beyond it fails, saying so. "
    "Switchman's own flag store only (400 with a remote Unleash)."
)


@router.get(
    "/{projectId}/action-budget",
    operation_id="get-project-action-budget",
    summary="A project's change budget for its action sets (switchman extension).",
    description=_BUDGET_DOC + " 404 when the project has none.",
    response_model=ProjectActionBudgetResultSchema,
)
async def get_project_action_budget(
    request: Request, project_id: ProjectId, _principal: AdminPrincipal
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return await project_budget.get_budget(conn, project=project_id)


@router.put(
    "/{projectId}/action-budget",
    operation_id="put-project-action-budget",
    summary="Set a project's change budget for its action sets (switchman extension).",
    description=_BUDGET_DOC,
    response_model=ProjectActionBudgetResultSchema,
)
async def put_project_action_budget(
    request: Request, project_id: ProjectId, payload: ProjectActionBudgetSchema, principal: AdminPrincipal
) -> dict[str, Any]:
    async with runtime_of(request).db.transaction() as conn:
        return await project_budget.put_budget(
            conn, project=project_id, body=payload, principal=principal, embedded=_embedded(request)
        )


@router.delete(
    "/{projectId}/action-budget",
    operation_id="delete-project-action-budget",
    summary="Remove a project's change budget (switchman extension).",
    description="404 when the project has none.",
    status_code=200,
    response_class=Response,
)
async def delete_project_action_budget(
    request: Request, project_id: ProjectId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await project_budget.delete_budget(conn, project=project_id, principal=principal)
    return Response(status_code=200)


@router.get(
    "/{projectId}/actions/{id}/policy",
    operation_id="get-actions-policy",
    summary="An action set's policy (switchman extension).",
    description=_POLICY_DOC + " 404 when the set has none.",
    response_model=ActionSetPolicyResultSchema,
)
async def get_actions_policy(
    request: Request, project_id: ProjectId, action_set_id: ActionSetId, _principal: AdminPrincipal
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return await policy.get_policy(
            conn, project=project_id, action_set_id=parse_path_id(action_set_id, "action set")
        )


@router.put(
    "/{projectId}/actions/{id}/policy",
    operation_id="put-actions-policy",
    summary="Set an action set's policy (switchman extension).",
    description=_POLICY_DOC + " Changing the policy starts its counting afresh.",
    response_model=ActionSetPolicyResultSchema,
)
async def put_actions_policy(
    request: Request,
    project_id: ProjectId,
    action_set_id: ActionSetId,
    payload: ActionSetPolicySchema,
    principal: AdminPrincipal,
) -> dict[str, Any]:
    async with runtime_of(request).db.transaction() as conn:
        return await policy.put_policy(
            conn,
            project=project_id,
            action_set_id=parse_path_id(action_set_id, "action set"),
            body=payload,
            principal=principal,
            embedded=_embedded(request),
        )


@router.delete(
    "/{projectId}/actions/{id}/policy",
    operation_id="delete-actions-policy",
    summary="Remove an action set's policy (switchman extension).",
    description="The set runs on every match again, as Unleash's. 404 when it has none.",
    status_code=200,
    response_class=Response,
)
async def delete_actions_policy(
    request: Request, project_id: ProjectId, action_set_id: ActionSetId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await policy.delete_policy(
            conn,
            project=project_id,
            action_set_id=parse_path_id(action_set_id, "action set"),
            principal=principal,
        )
    return Response(status_code=200)


@router.post(
    "/{projectId}/actions/{id}/events/{eventId}/undo",
    operation_id="undo-actions-event",
    summary="Undo an action set event: put back the flag states its run changed (switchman extension).",
    description=(
        "ADR 0024. Each flag state the run changed is set back to the one before the run — as the caller, "
        "so the flag audit log names who undid it — unless the flag was changed since (then it is skipped, "
        "with who changed it and when) or is gone. At most once per event (409 after), not while the event "
        "is running (409), and only on switchman's own flag store (409 with a remote Unleash, which does "
        "not tell which flags a run changed). The undo is an audit event (`action-set-event-undone`)."
    ),
    response_model=UndoActionSetEventResultSchema,
    responses=error_responses(409),
)
async def undo_actions_event(
    request: Request,
    project_id: ProjectId,
    action_set_id: ActionSetId,
    event_id: Annotated[str, Path(alias="eventId", description="The action set event id.")],
    principal: AdminPrincipal,
) -> dict[str, Any]:
    async with runtime_of(request).db.transaction() as conn:
        return await undo.undo_event(
            conn,
            project=project_id,
            action_set_id=parse_path_id(action_set_id, "action set"),
            event_id=parse_path_id(event_id, "event"),
            principal=principal,
            embedded=_embedded(request),
        )


_DECISION_BEFORE_DESCRIPTION = (
    "A decision id: the page starts just below (older than) it — O(limit) at any depth, stable while new "
    "decisions arrive. `offset` then counts from there."
)


@router.get(
    "/{projectId}/actions/{id}/decisions",
    operation_id="get-actions-decisions",
    summary="An action set's decisions, newest first (switchman extension).",
    description=(
        "The decision trace of the set (ADR 0022): for each signal of its source processed while the set "
        "was enabled, whether it matched (with the values its filters saw) and ran, or which filter "
        "failed and why. Paged like the events listing (`limit`, `offset`), plus a `before` cursor."
    ),
    response_model=DecisionsSchema,
)
async def get_actions_decisions(
    request: Request,
    project_id: ProjectId,
    action_set_id: ActionSetId,
    _principal: AdminPrincipal,
    limit: Annotated[str | None, Query(description=_LIMIT_DESCRIPTION)] = None,
    offset: Annotated[str | None, Query(description=_OFFSET_DESCRIPTION)] = None,
    before: Annotated[str | None, Query(description=_DECISION_BEFORE_DESCRIPTION)] = None,
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return await trace.action_set_decisions(
            conn,
            project=project_id,
            action_set_id=parse_path_id(action_set_id, "action set"),
            limit=normalize_limit(limit),
            offset=normalize_offset(offset),
            before=normalize_offset(before) or None,
        )


@signals_router.get(
    "/{id}/trace",
    operation_id="get-signal-trace",
    summary="Why each action set did or did not run for a signal (switchman extension).",
    description=(
        "The signal's decision trace (ADR 0022): for each enabled action set of its source, `matched` "
        "(with the values seen and the run's event), `failed`, or `not-matched` (the failing filter, the "
        "value it saw, and why); the sender format's normalised view when its endpoint has one. 404 when "
        "there is no such signal (or it was pruned by retention)."
    ),
    response_model=SignalTraceSchema,
)
async def get_signal_trace(
    request: Request,
    signal_id: Annotated[str, Path(alias="id", description="The signal id.")],
    _principal: AdminPrincipal,
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return await trace.signal_trace(conn, parse_path_id(signal_id, "signal"))


@router.post(
    "/{projectId}/actions/{id}/explain",
    operation_id="explain-actions",
    summary="Explain whether an action set would fire (switchman extension).",
    description=(
        "A dry run of the action set's filters against `payload`, or against the payload of the stored "
        "signal `signalId`. Nothing is recorded or executed. Each filter reports the value it saw and "
        "why it passed or failed."
    ),
    response_model=ExplainActionsResultSchema,
)
async def explain_actions(
    request: Request,
    project_id: ProjectId,
    action_set_id: ActionSetId,
    payload: ExplainActionsSchema,
    _principal: AdminPrincipal,
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return await service.explain(
            conn,
            project=project_id,
            action_set_id=parse_path_id(action_set_id, "action set"),
            payload=payload.payload,
            signal_id=payload.signal_id,
            check_flags=_embedded(request),
        )


_BACKTEST_DOC = (
    "Replays the newest `limit` stored signals of the set's signal endpoint (between `from` and `to` when "
    "given), oldest first, through the set's filters — with the endpoint's sender format, as the worker "
    "matches — and says which signals would have matched (the others: the first filter that failed, "
    "counted), which runs would have happened, and the flag states they would have left. Read-only: "
    "nothing is recorded or changed."
)


@router.post(
    "/{projectId}/actions/{id}/backtest",
    operation_id="backtest-actions",
    summary="What an action set would have done over stored signals (switchman extension).",
    description=_BACKTEST_DOC,
    response_model=BacktestActionsResultSchema,
)
async def backtest_actions(
    request: Request,
    project_id: ProjectId,
    action_set_id: ActionSetId,
    payload: BacktestActionsSchema,
    _principal: AdminPrincipal,
) -> dict[str, Any]:
    return await _backtest(request, project_id, parse_path_id(action_set_id, "action set"), payload)


@router.post(
    "/{projectId}/actions/backtest",
    operation_id="backtest-draft-actions",
    summary="What a draft action set would have done over stored signals (switchman extension).",
    description=_BACKTEST_DOC + " The draft is `actionSet`, a create body; nothing is stored.",
    response_model=BacktestActionsResultSchema,
)
async def backtest_draft_actions(
    request: Request, project_id: ProjectId, payload: BacktestActionsSchema, _principal: AdminPrincipal
) -> dict[str, Any]:
    return await _backtest(request, project_id, None, payload)


async def _backtest(
    request: Request, project_id: str, action_set_id: int | None, payload: BacktestActionsSchema
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return await service.backtest(
            conn,
            project=project_id,
            action_set_id=action_set_id,
            draft=payload.action_set,
            policy=payload.policy,
            limit=payload.limit,
            since=payload.from_,
            until=payload.to,
        )


@router.get(
    "/{projectId}/actions/{id}/warnings",
    operation_id="get-actions-warnings",
    summary="What may keep an action set from doing what its author meant (switchman extension).",
    description=(
        "Warnings about a valid action set: a filter key its signal endpoint's recent signals never carried "
        "(with the nearest key that did), `caseInsensitive` on IN/NOT_IN (ignored), an empty `values` list, "
        "and — with the embedded flag store — a flag that is missing or archived, or a tag no flag carries. "
        "`suggestedKeys` are the flattened keys of the endpoint's newest signal. Codes: docs/filters.md."
    ),
    response_model=ActionSetWarningsSchema,
)
async def get_actions_warnings(
    request: Request, project_id: ProjectId, action_set_id: ActionSetId, _principal: AdminPrincipal
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return await service.warnings_of(
            conn,
            project=project_id,
            action_set_id=parse_path_id(action_set_id, "action set"),
            check_flags=_embedded(request),
        )


@router.post(
    "/{projectId}/actions/validate",
    operation_id="validate-actions",
    summary="Check an action set before saving it (switchman extension).",
    description=(
        "Takes the body of `create-actions` and answers as creating it would — the same 400 for invalid "
        "input — but stores nothing: 200 with the warnings the created set would have."
    ),
    response_model=ActionSetWarningsSchema,
)
async def validate_actions(
    request: Request, project_id: ProjectId, payload: CreateActionsSchema, _principal: AdminPrincipal
) -> dict[str, Any]:
    ctx = runtime_of(request)
    async with ctx.db.read() as conn:
        return await service.validate_action_set(
            conn, project=project_id, payload=payload, settings=ctx.settings
        )


def _embedded(request: Request) -> bool:
    """Flags are checked only in switchman's own store; a remote Unleash is never asked for warnings."""
    return runtime_of(request).settings.flag_backend == "embedded"


async def _announce_warnings(
    request: Request, response: Response, conn: AsyncConnection, wire: dict[str, Any]
) -> None:
    """Create/update answers keep Unleash's body; a warning count header and a link point at the rest."""
    found = await service.warnings_of(
        conn, project=wire["project"], action_set_id=wire["id"], check_flags=_embedded(request)
    )
    if found["warnings"]:
        location = f"/api/admin/projects/{quote(wire['project'], safe='')}/actions/{wire['id']}/warnings"
        response.headers[service.WARNINGS_HEADER] = str(len(found["warnings"]))
        response.headers["Link"] = f'<{location}>; rel="describedby"'
