"""Action set use cases: list, create, update, delete, enable/disable, config, explain.

Validation of a create/update body happens in three stages, each answering 400:
1. the request model (`CreateActionsSchema`, rendered by the app as BadDataError with `details`);
2. resource limits → `ExceedsLimitError` (`action set`, `action`, `filter`, `filter value`);
3. everything else in one BadDataError whose `details` has one `{path, message}` per problem:
   blank name, text that cannot be stored, unknown actor / signal endpoint, invalid filters
   (engine rules), invalid actions (engine rules, `executionParams.project` = the path's project).
Then the name must be free in the project (409 `NameExistsError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets import event_changes, policy_store
from switchman.action_sets import repository as repo
from switchman.action_sets.repository import ActionSetRecord as ActionSetRecord  # the worker reads these
from switchman.action_sets.repository import NewActionSet
from switchman.action_sets.schemas import ActionSetPolicySchema, CreateActionsSchema
from switchman.audit.log import record_event
from switchman.auth.principal import Principal
from switchman.config import Settings
from switchman.engine.actions import (
    TOGGLE_FEATURE_OFF,
    TOGGLE_FEATURE_ON,
    TOGGLE_FEATURES_OFF_BY_TAG,
    TOGGLE_FEATURES_ON_BY_TAG,
    definitions_config,
    validate_action,
)
from switchman.engine.backtest import BacktestSignal, PlannedAction
from switchman.engine.backtest import backtest as run_backtest
from switchman.engine.constraints import normalize_filters, validate_filters
from switchman.engine.filter_warnings import filter_warnings
from switchman.engine.formats import normalise, normalised_keys
from switchman.engine.matching import compile_filters, match_payload
from switchman.engine.payload import flatten_payload
from switchman.engine.policy import Policy, PolicyState, alert_identity
from switchman.engine.policy import decide as decide_policy
from switchman.engine.problems import ActionSetWarning, Problem, pointer
from switchman.errors import (
    VALIDATION_MESSAGE,
    BadDataError,
    ExceedsLimitError,
    NameExistsError,
    NotFoundError,
    ServiceUnavailableError,
)
from switchman.flags import features as flag_features
from switchman.flags import projects as flag_projects
from switchman.flags import tags as flag_tags
from switchman.flags import toggles as flag_toggles
from switchman.flags.backend import FlagActionError, FlagCatalog
from switchman.flags.projects import project_not_found
from switchman.service_accounts.service import service_account_exists
from switchman.signal_endpoints import sender_format
from switchman.signal_endpoints import service as signal_endpoints_service
from switchman.signal_endpoints.schemas import SIGNAL_SOURCE
from switchman.timeutil import iso, utcnow

ACTIONS_CREATED = "actions-created"
ACTIONS_UPDATED = "actions-updated"
ACTIONS_DELETED = "actions-deleted"
_MAX_PROJECT_ID_LENGTH = 100


async def _audit(conn: AsyncConnection, type: str, actor: Principal, **fields: Any) -> None:
    """Record an action set change in the audit log; none changes what SDK clients are served."""
    await record_event(conn, type=type, actor=actor, visible_to_clients=False, **fields)


async def require_project(conn: AsyncConnection, project: str, *, lock: bool = False) -> None:
    """NotFoundError unless the project exists (ids that cannot be stored cannot exist).

    With `lock`, the project row is locked on PostgreSQL (`FOR NO KEY UPDATE`, which does not block
    foreign-key checks of other features) so that action set writers of one project queue: the
    per-project limit and name checks then hold until commit. SQLite write transactions are serial.
    """
    if not repo.storable_text(project) or len(project) > _MAX_PROJECT_ID_LENGTH:
        raise project_not_found(project[:_MAX_PROJECT_ID_LENGTH])
    await flag_projects.require_project(conn, project)
    if lock:
        await flag_projects.lock_for_dependents(conn, project)


async def require_action_set(
    conn: AsyncConnection, *, project: str, action_set_id: int, lock: bool = False
) -> ActionSetRecord:
    await require_project(conn, project, lock=lock)
    found = await repo.get_action_set(conn, project=project, action_set_id=action_set_id)
    if found is None:
        raise NotFoundError(f"Could not find action set with id {action_set_id} in project {project!r}")
    return found


async def list_action_sets(conn: AsyncConnection, *, project: str) -> list[dict[str, Any]]:
    """`actionsSchema` of every action set of the project, ascending id."""
    await require_project(conn, project)
    return [record.wire for record in await repo.list_action_sets(conn, project=project)]


async def create_action_set(
    conn: AsyncConnection,
    *,
    project: str,
    payload: CreateActionsSchema,
    principal: Principal,
    settings: Settings,
) -> dict[str, Any]:
    """Create an action set in `project` as `principal`; returns its `actionsSchema`."""
    await require_project(conn, project, lock=True)
    if await repo.count_action_sets(conn, project=project) >= settings.action_sets_per_project_limit:
        raise ExceedsLimitError("action set", settings.action_sets_per_project_limit)
    values = await _validated(conn, project=project, payload=payload, settings=settings, enabled=True)
    if await repo.name_taken(conn, project=project, name=values.name):
        raise _name_exists(values.name, project)
    new_id = await repo.insert_action_set(
        conn, project=project, values=values, created_by_user_id=principal.user_id, now=utcnow()
    )
    created = await repo.get_action_set(conn, project=project, action_set_id=new_id)
    assert created is not None
    await _audit(conn, ACTIONS_CREATED, principal, project=project, data=created.wire)
    return created.wire


async def update_action_set(
    conn: AsyncConnection,
    *,
    project: str,
    action_set_id: int,
    payload: CreateActionsSchema,
    principal: Principal,
    settings: Settings,
) -> dict[str, Any]:
    """Replace an action set with `payload` (actions re-created with new ids); returns its `actionsSchema`.

    An omitted `enabled` keeps the current value.
    """
    before = await require_action_set(conn, project=project, action_set_id=action_set_id, lock=True)
    values = await _validated(
        conn, project=project, payload=payload, settings=settings, enabled=before.enabled
    )
    if await repo.name_taken(conn, project=project, name=values.name, except_id=action_set_id):
        raise _name_exists(values.name, project)
    await repo.replace_action_set(
        conn, action_set_id=action_set_id, values=values, created_by_user_id=principal.user_id, now=utcnow()
    )
    after = await repo.get_action_set(conn, project=project, action_set_id=action_set_id)
    assert after is not None
    await _audit(conn, ACTIONS_UPDATED, principal, project=project, data=after.wire, pre_data=before.wire)
    return after.wire


async def delete_action_set(
    conn: AsyncConnection, *, project: str, action_set_id: int, principal: Principal
) -> None:
    """Delete an action set and its actions; its events stay stored but are no longer listed."""
    before = await require_action_set(conn, project=project, action_set_id=action_set_id)
    await repo.delete_action_set(conn, action_set_id=action_set_id)
    await _audit(conn, ACTIONS_DELETED, principal, project=project, pre_data=before.wire)


async def set_action_set_enabled(
    conn: AsyncConnection, *, project: str, action_set_id: int, enabled: bool, principal: Principal
) -> dict[str, Any]:
    """Enable or disable an action set (idempotent); returns its `actionsSchema`."""
    before = await require_action_set(conn, project=project, action_set_id=action_set_id)
    await repo.set_enabled(conn, action_set_id=action_set_id, enabled=enabled)
    after = await repo.get_action_set(conn, project=project, action_set_id=action_set_id)
    assert after is not None
    await _audit(conn, ACTIONS_UPDATED, principal, project=project, data=after.wire, pre_data=before.wire)
    return after.wire


async def actions_config(conn: AsyncConnection, *, project: str) -> dict[str, object]:
    """`actionDefinitionsConfigSchema` whose options come from the project's environments, flags and tags."""
    await require_project(conn, project)
    return definitions_config(
        environments=await flag_projects.project_environments(conn, project),
        features=await flag_features.live_flag_names(conn, project),
        tags=await flag_tags.project_tag_labels(conn, project),
    )


async def remote_actions_config(catalog: FlagCatalog, *, project: str) -> dict[str, object]:
    """`actionDefinitionsConfigSchema` with a remote flag backend: the options are the remote server's for
    `project` (the caller checks first that the project exists here, where the action sets live).

    Called outside any database transaction (a remote call may take up to the action timeout);
    503 ServiceUnavailableError when the remote cannot be read.
    """
    try:
        options = await catalog.action_options(project)
    except FlagActionError as exc:
        raise ServiceUnavailableError(
            f"Could not read the options of project {project} from the flag backend: {exc}"
        ) from exc
    return definitions_config(environments=options.environments, features=options.features, tags=options.tags)


async def explain(
    conn: AsyncConnection,
    *,
    project: str,
    action_set_id: int,
    payload: Mapping[str, Any] | None,
    signal_id: int | None,
    check_flags: bool,
) -> dict[str, Any]:
    """Dry run: would the action set's filters pass for `payload` (or the payload of signal `signal_id`)?

    Nothing is recorded or executed. Exactly one of `payload` and `signal_id` must be given. The answer
    carries the set's warnings too (`action_set_warnings`).
    """
    record = await require_action_set(conn, project=project, action_set_id=action_set_id)
    if (payload is None) == (signal_id is None):
        raise BadDataError(
            VALIDATION_MESSAGE,
            details=[{"path": "/", "message": "send exactly one of `payload` and `signalId`"}],
        )
    arrived = utcnow()
    if signal_id is not None:
        stored = await signal_endpoints_service.signal_summary(conn, signal_id)
        if stored is None:
            raise NotFoundError(f"Could not find signal with id {signal_id}")
        loaded = orjson.loads(stored.payload)
        payload = loaded if isinstance(loaded, dict) else {}
        arrived = stored.created_at
    assert payload is not None
    sender = await sender_format.format_of(conn, record.source_id)
    normalised = normalise(sender.format, payload, split=sender.split_alerts) if sender else None
    extra = normalised_keys(sender.format, payload, split=sender.split_alerts) if sender else None
    result = match_payload(record.filters, payload, extra=extra)
    found = await _record_warnings(conn, record, check_flags=check_flags)
    verdict = (
        await _policy_verdict(conn, record, {**flatten_payload(payload), **(extra or {})}, arrived)
        if result.matched
        else None
    )
    return {
        **found,
        **({"normalised": normalised} if normalised is not None else {}),
        **({"policy": verdict} if verdict is not None else {}),
        "matched": result.matched,
        "enabled": record.enabled,
        "filters": [
            {
                "parameter": item.parameter,
                "operator": item.operator,
                "passed": item.passed,
                "seen": item.seen,
                "reason": item.reason,
            }
            for item in result.filters
        ],
    }


_HOUR = timedelta(hours=1)


async def _policy_verdict(
    conn: AsyncConnection, record: ActionSetRecord, flat: Mapping[str, object], at: datetime
) -> dict[str, Any] | None:
    """What the set's policy would decide for a matching signal that arrived `at`, from the state its
    decisions left, and the change budgets' use (nothing is written); None when the set has no policy and
    its project no budget (ADR 0023, 0024)."""
    policy = (await policy_store.policies_of(conn, [record.id])).get(record.id)
    project_budget = (await policy_store.project_budgets_of(conn, [record.project])).get(record.project)
    if policy is None and project_budget is None:
        return None
    policy = policy or Policy()
    alert = alert_identity(policy, flat)
    state = await policy_store.load_state(conn, record.id, alert)
    decided = decide_policy(policy, state, at)
    since = utcnow() - _HOUR
    budgets = []
    if policy.max_changes_per_hour is not None:
        used = await event_changes.changes_since(conn, action_set_id=record.id, since=since)
        budgets.append(_budget_text("", used, policy.max_changes_per_hour))
    if project_budget is not None:
        used = await event_changes.changes_since(conn, project=record.project, since=since)
        budgets.append(_budget_text(f"project {record.project}: ", used, project_budget))
    return {
        "verdict": str(decided.verdict),
        "reason": decided.reason,
        "alertId": alert or None,
        "budget": "; ".join(budgets) or None,
        "timeBox": _time_box_text(policy, state),
    }


def _budget_text(whose: str, used: int, budget: int) -> str:
    full = ": an action that changes a flag would fail" if used >= budget else ""
    return f"{whose}{used} of {budget} flag changes used in the last hour{full}"


def _time_box_text(policy: Policy, state: PolicyState) -> str | None:
    if policy.revert_after_seconds is None:
        return None
    if state.open_event is None or state.revert_due is None:
        return (
            f"no run open: a run is put back {policy.revert_after_seconds} s after the last matching signal"
        )
    return (
        f"event {state.open_event} is put back at {iso(state.revert_due)} unless a matching signal renews it "
        f"(last renewed by signal {state.renewed_by})"
    )


# --- backtest (issue 14) -------------------------------------------------------------------------------------


async def backtest(
    conn: AsyncConnection,
    *,
    project: str,
    action_set_id: int | None,
    draft: CreateActionsSchema | None,
    limit: int,
    since: datetime | None,
    until: datetime | None,
    policy: ActionSetPolicySchema | None = None,
) -> dict[str, Any]:
    """What a saved action set (`action_set_id`) or a draft one would have done over the newest `limit`
    stored signals of its endpoint (in [since, until)), with `policy` (by default a saved set's own).
    Read-only: nothing is recorded or changed."""
    await require_project(conn, project)
    if (action_set_id is None) == (draft is None):
        message = (
            "a draft action set is required"
            if draft is None
            else "send a draft action set only to …/actions/backtest"
        )
        raise BadDataError(VALIDATION_MESSAGE, details=[{"path": "/actionSet", "message": message}])
    if draft is not None:
        problems = validate_filters(draft.match.payload, max_filters=None, max_values=None)
        if problems:
            raise BadDataError(
                VALIDATION_MESSAGE,
                details=[{"path": "/actionSet" + p.path, "message": p.message} for p in problems],
            )
        filters: Mapping[str, Any] = normalize_filters(draft.match.payload)
        source_id = int(draft.match.source_id)
        actions = [
            PlannedAction(a.action, a.sort_order, a.execution_params)
            for a in sorted(draft.actions, key=lambda a: a.sort_order)
        ]
    else:
        assert action_set_id is not None
        record = await require_action_set(conn, project=project, action_set_id=action_set_id)
        filters, source_id = record.filters, record.source_id
        actions = [PlannedAction(a.action, a.sort_order, a.execution_params) for a in record.actions]
    replayed_policy = (
        policy_from_schema(policy)
        if policy is not None
        else (await policy_store.policies_of(conn, [action_set_id])).get(action_set_id)
        if action_set_id is not None
        else None
    )
    if not await signal_endpoints_service.endpoint_exists(conn, source_id):
        raise NotFoundError(f"Could not find signal endpoint with id {source_id}.")
    sender = await sender_format.format_of(conn, source_id)
    replay = await signal_endpoints_service.signals_for_replay(
        conn, endpoint_id=source_id, limit=limit, since=_aware(since), until=_aware(until)
    )
    signals = (
        BacktestSignal(signal_id, iso(created_at), sender_format.filter_view(sender, payload), created_at)
        for signal_id, created_at, payload in replay
    )
    result = run_backtest(compile_filters(filters), actions, signals, replayed_policy)
    return {
        "signals": result.considered,
        "matched": result.matched,
        "runs": [
            {
                "signalId": signal.id,
                "createdAt": signal.created_at,
                "actions": [
                    {
                        "action": a.action,
                        "sortOrder": a.sort_order,
                        "executionParams": dict(a.execution_params),
                    }
                    for a in planned
                ],
            }
            for signal, planned in result.runs
        ],
        "flags": [
            {
                "target": f.target,
                "environment": f.environment,
                "changes": f.changes,
                "finalState": f.final_state,
            }
            for f in result.flags.values()
        ],
        "notMatched": [
            {"parameter": parameter, "signals": count}
            for parameter, count in result.not_matched.most_common()
        ],
        "heldBack": [
            {
                "signalId": signal.id,
                "createdAt": signal.created_at,
                "verdict": str(verdict),
                "reason": reason,
                "alertId": alert or None,
            }
            for signal, verdict, reason, alert in result.held_back
        ],
    }


def policy_from_schema(body: ActionSetPolicySchema) -> Policy:
    return Policy(
        shadow=body.shadow,
        cooldown_seconds=body.cooldown_seconds,
        window_count=body.window_count,
        window_seconds=body.window_seconds,
        per_alert=body.per_alert,
        alert_key=body.alert_key,
        restore_on_resolve=body.restore_on_resolve,
        max_changes_per_hour=body.max_changes_per_hour,
        revert_after_seconds=body.revert_after_seconds,
    )


def _aware(moment: datetime | None) -> datetime | None:
    """A request's date-time in UTC (one without an offset is read as UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- warnings (ADR 0015) -----------------------------------------------------------------------------

# Filter keys are checked against the flattened payloads of this many of the source's newest signals.
RECENT_SIGNALS_FOR_KEYS = 20
WARNINGS_HEADER = "Switchman-Warnings"


async def action_set_warnings(
    conn: AsyncConnection,
    *,
    project: str,
    filters: Mapping[str, Any],
    source_id: int,
    actions: Sequence[tuple[str, Mapping[str, Any]]],
    check_flags: bool,
) -> dict[str, Any]:
    """`actionSetWarningsSchema` of a valid action set: filters that cannot mean what they say, keys its
    source's recent signals never carried, and (with `check_flags`, the embedded flag store) flags its
    actions name that are missing or archived, or tags no live flag carries."""
    payloads = await signal_endpoints_service.recent_signal_payloads(
        conn, endpoint_id=source_id, limit=RECENT_SIGNALS_FOR_KEYS
    )
    known_keys: set[str] | None = None
    sender = await sender_format.format_of(conn, source_id)
    normalised: list[str] = []
    if payloads:
        known_keys = set().union(*(flatten_payload(payload) for payload in payloads))
        if sender is not None:  # the sender format's normalised keys are keys of these signals too
            known_keys.update(*(normalised_keys(sender.format, payload) for payload in payloads))
            normalised = list(normalised_keys(sender.format, payloads[0]))
    warnings = filter_warnings(filters, known_keys=known_keys)
    if not await signal_endpoints_service.endpoint_exists(conn, source_id):
        warnings.insert(
            0,
            ActionSetWarning(
                "/match/sourceId",
                "source-missing",
                f"the signal endpoint {source_id} was deleted: this action set can never fire; point it at "
                "another endpoint or delete it",
            ),
        )
    if check_flags:
        warnings.extend(await _flag_warnings(conn, project=project, actions=actions))
    return {
        "warnings": [{"path": w.path, "code": w.code, "message": w.message} for w in warnings],
        "suggestedKeys": [*normalised, *flatten_payload(payloads[0])] if payloads else [],
    }


async def _flag_warnings(
    conn: AsyncConnection, *, project: str, actions: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[ActionSetWarning]:
    names = [str(params.get("featureName")) for _, params in actions if params.get("featureName") is not None]
    archived = await flag_features.archived_flags(conn, project=project, names=names)
    warnings: list[ActionSetWarning] = []
    for index, (action, params) in enumerate(actions):
        here = f"/actions/{index}/executionParams"
        name, tag = params.get("featureName"), params.get("tag")
        if action in (TOGGLE_FEATURE_ON, TOGGLE_FEATURE_OFF) and isinstance(name, str):
            if name not in archived:
                warnings.append(
                    ActionSetWarning(
                        here + "/featureName",
                        "flag-missing",
                        f"there is no flag named {name!r} in project {project!r}: this action will fail",
                    )
                )
            elif archived[name]:
                warnings.append(
                    ActionSetWarning(
                        here + "/featureName",
                        "flag-archived",
                        f"the flag {name!r} is archived: this action will fail until it is revived",
                    )
                )
        elif action in (TOGGLE_FEATURES_ON_BY_TAG, TOGGLE_FEATURES_OFF_BY_TAG) and isinstance(tag, str):
            tag_type, _, tag_value = tag.partition(":")
            if not await flag_toggles.flags_with_tag(
                conn, project=project, tag_type=tag_type, tag_value=tag_value
            ):
                warnings.append(
                    ActionSetWarning(
                        here + "/tag",
                        "tag-unused",
                        f"no flag of project {project!r} carries the tag {tag!r} now: this action changes nothing",
                    )
                )
    return warnings


async def warnings_of(
    conn: AsyncConnection, *, project: str, action_set_id: int, check_flags: bool
) -> dict[str, Any]:
    """`actionSetWarningsSchema` of a stored action set."""
    record = await require_action_set(conn, project=project, action_set_id=action_set_id)
    return await _record_warnings(conn, record, check_flags=check_flags)


async def _record_warnings(
    conn: AsyncConnection, record: ActionSetRecord, *, check_flags: bool
) -> dict[str, Any]:
    return await action_set_warnings(
        conn,
        project=record.project,
        filters=record.filters,
        source_id=record.source_id,
        actions=[(action.action, action.execution_params) for action in record.actions],
        check_flags=check_flags,
    )


async def validate_action_set(
    conn: AsyncConnection, *, project: str, payload: CreateActionsSchema, settings: Settings
) -> dict[str, Any]:
    """Dry run of a create: the same 400s as creating it, else its warnings; nothing is stored."""
    await require_project(conn, project)
    values = await _validated(conn, project=project, payload=payload, settings=settings, enabled=True)
    return await action_set_warnings(
        conn,
        project=project,
        filters=values.filters,
        source_id=values.source_id,
        actions=[(action, params) for action, _, params in values.actions],
        check_flags=settings.flag_backend == "embedded",
    )


async def action_sets_acting_on_flag(
    conn: AsyncConnection, *, project: str, feature_name: str
) -> list[ActionSetRecord]:
    """The project's action sets with an action naming flag `feature_name`, ascending id."""
    return [
        record
        for record in await repo.list_action_sets(conn, project=project)
        if any(action.execution_params.get("featureName") == feature_name for action in record.actions)
    ]


async def matching_candidates(conn: AsyncConnection, *, source: str, source_id: int) -> list[ActionSetRecord]:
    """The enabled action sets listening to a signal source, ascending id (what the worker matches)."""
    return await repo.load_matching_candidates(conn, source=source, source_id=source_id)


async def sets_run_by(conn: AsyncConnection, account_id: int) -> list[str]:
    """The action sets (enabled or not) that run as service account `account_id`, named for a person."""
    records = await repo.action_sets_of_actor(conn, account_id)
    return [f'"{record.name}" (id {record.id}, project "{record.project}")' for record in records]


async def enabled_sets_of_endpoint(conn: AsyncConnection, endpoint_id: int) -> list[str]:
    """The enabled action sets listening to signal endpoint `endpoint_id`, named for a person."""
    records = await repo.load_matching_candidates(conn, source=SIGNAL_SOURCE, source_id=endpoint_id)
    return [f'"{record.name}" (id {record.id}, project "{record.project}")' for record in records]


async def _validated(
    conn: AsyncConnection, *, project: str, payload: CreateActionsSchema, settings: Settings, enabled: bool
) -> NewActionSet:
    body = payload.model_dump(by_alias=True)
    filters_in = payload.match.payload
    if len(payload.actions) > settings.action_set_actions_limit:
        raise ExceedsLimitError("action", settings.action_set_actions_limit)
    filter_problems = validate_filters(
        filters_in,
        max_filters=settings.action_set_filters_limit,
        max_values=settings.action_set_filter_values_limit,
    )
    for problem in filter_problems:
        if problem.limit is not None:
            raise ExceedsLimitError(problem.limit.resource, problem.limit.maximum)

    problems: list[Problem] = list(_text_problems(body, ""))
    if not payload.name.strip():
        problems.append(Problem("/name", "must not be blank"))
    # Share-locks the account on PostgreSQL, so a concurrent delete of the account waits and sees this set.
    if not await service_account_exists(conn, payload.actor_id):
        problems.append(Problem("/actorId", f"no service account with id {payload.actor_id}"))
    source_id = int(payload.match.source_id)
    # Key-share-locks the endpoint on PostgreSQL, so a concurrent delete waits and then sees this set.
    if not await signal_endpoints_service.endpoint_exists(conn, source_id, key_share=True):
        problems.append(Problem("/match/sourceId", f"no signal endpoint with id {source_id}"))
    problems.extend(filter_problems)
    if not payload.actions:
        problems.append(Problem("/actions", "must contain at least one action"))
    for index, action in enumerate(body["actions"]):
        problems.extend(validate_action(action, index=index, project=project))
    if problems:
        raise BadDataError(
            VALIDATION_MESSAGE,
            details=[{"path": problem.path, "message": problem.message} for problem in _unique(problems)],
        )
    return NewActionSet(
        name=payload.name,
        description=payload.description,
        actor_id=payload.actor_id,
        enabled=payload.enabled if payload.enabled is not None else enabled,
        source=payload.match.source,
        source_id=source_id,
        filters=normalize_filters(filters_in),
        actions=[(action.action, action.sort_order, action.execution_params) for action in payload.actions],
    )


def _text_problems(value: object, path: str) -> list[Problem]:
    """A problem for every string (object keys included) that cannot be stored as is."""
    problems: list[Problem] = []
    if isinstance(value, str):
        if not repo.storable_text(value):
            problems.append(Problem(path or "/", "must be valid Unicode text without NUL characters"))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            here = path + pointer(key) if repo.storable_text(str(key)) else path
            if not repo.storable_text(str(key)):
                problems.append(
                    Problem(path or "/", "keys must be valid Unicode text without NUL characters")
                )
            problems.extend(_text_problems(item, here))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems.extend(_text_problems(item, path + pointer(index)))
    return problems


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    kept: list[Problem] = []
    for problem in problems:
        key = (problem.path, problem.message)
        if key not in seen:
            seen.add(key)
            kept.append(problem)
    return kept


def _name_exists(name: str, project: str) -> NameExistsError:
    return NameExistsError(f"An action set named {name!r} already exists in project {project!r}")


# --- the web console's reads (ADR 0026): each bounded, so a page stays fast at any table size -----------------


async def console_failed_runs(conn: AsyncConnection, *, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` failed runs of any set: when, which set (name, project), which signal, and the
    failed actions' details."""
    found = []
    for row in await repo.failed_events(conn, limit=limit):
        doc = orjson.loads(row.doc)
        actions = doc.get("actionSet", {}).get("actions", [])
        details = "; ".join(str(a.get("details") or "") for a in actions if a.get("state") == "failed")
        found.append({
            "created_at": iso(row.created_at), "action_set_id": int(row.action_set_id),
            "action_set_name": doc.get("actionSet", {}).get("name", ""), "project": doc.get("actionSet", {}).get("project", ""),
            "signal_id": int(row.signal_id), "details": details,
        })  # fmt: skip
    return found


async def console_run_counts(conn: AsyncConnection, *, since: datetime, window: int) -> tuple[int, int]:
    """Runs, and failed runs, among the newest `window` runs that started after `since`."""
    return await repo.recent_run_counts(conn, since=since, window=window)


async def console_last_runs(
    conn: AsyncConnection, action_set_ids: Sequence[int]
) -> dict[int, dict[str, str]]:
    """Each set's newest run: its state and when it started (sets that never ran are left out)."""
    found = {}
    for action_set_id in action_set_ids:
        row = await repo.last_event(conn, action_set_id)
        if row is not None:
            found[action_set_id] = {"state": str(row.state), "created_at": iso(row.created_at)}
    return found


async def console_runs_per_minute(
    conn: AsyncConnection, *, since: datetime, minutes: int, window: int
) -> dict[str, list[int]]:
    """Runs per minute by outcome (`success`, `failed`, `started`) over the `minutes` minutes after `since`,
    oldest first, among the newest `window` runs."""
    series = {state: [0] * minutes for state in ("success", "failed", "started")}
    for row in await repo.recent_runs(conn, since=since, window=window):
        minute = int((row.created_at - since).total_seconds() // 60)
        if 0 <= minute < minutes and row.state in series:
            series[row.state][minute] += 1
    return series
