"""Wire models of action sets, their configuration and their events (spec §3.3 to §3.6, founding doc).

Where Unleash's OpenAPI names a schema in lowerCamelCase (`actionsSchema`, `actionSetEventSchema`…),
the class sets `__qualname__` to that name: FastAPI names OpenAPI components after it, so the
generated document carries Unleash's component names while Python keeps PascalCase classes.

The event models (`ActionSetEventsSchema` and below) only document the events listing: the listing
itself serves stored JSON documents (see `event_docs.py`) and never instantiates them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from switchman.engine.operators import OPERATOR_REFERENCE
from switchman.schemas import RequestModel, WireModel

# Integer columns are 32-bit on PostgreSQL: larger ids can never exist, so they are refused up front.
MAX_INT32 = 2_147_483_647
NAME_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 10_000

DateTimeText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class _StrictWire(WireModel):
    """An output object with `additionalProperties: false` in the OpenAPI document."""

    model_config = ConfigDict(extra="forbid")


# --- requests ---------------------------------------------------------------------------------------

FILTERS_DESCRIPTION = (
    "The filters: a map from a flattened payload path to a constraint "
    "`{operator, values?, value?, inverted?, caseInsensitive?}`; every filter must hold, and `{}` matches "
    "every signal. Paths join object keys with `.` and index arrays with `[i]` (`alerts[0].labels.severity`, "
    "never `alerts.0…`). The payload value is compared as text (numbers and booleans as JavaScript prints "
    "them). `inverted: true` negates the result; `caseInsensitive: true` applies to the STR_* operators only. "
    "A missing key fails every operator except NOT_IN. Operators:\n"
    + "\n".join(
        f"- `{operator}`: {meaning}; e.g. `{example}`"
        for operator, (meaning, example) in OPERATOR_REFERENCE.items()
    )
    + "\nMore in docs/filters.md."
)


class CreateActionsSchemaMatch(RequestModel):
    """`createActionsSchema.match`: which signals trigger the action set."""

    source: Literal["signal-endpoint"] = Field(
        description="The source of the signals; only `signal-endpoint`."
    )
    source_id: Annotated[
        StrictInt | StrictFloat,
        Field(description="The id of the signal endpoint whose signals trigger the action set."),
        WithJsonSchema({"type": "number", "minimum": 1}),
    ]
    payload: dict[str, Any] = Field(description=FILTERS_DESCRIPTION)

    @field_validator("source_id")
    @classmethod
    def _integral_id(cls, value: float) -> int:
        # The schema says `number`; only integral values can name an endpoint.
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("must be an integer")
        as_int = int(value)
        if not 1 <= as_int <= MAX_INT32:
            raise ValueError(f"must be between 1 and {MAX_INT32}")
        return as_int


class CreateActionSchema(RequestModel):
    __qualname__ = "createActionSchema"

    action: StrictStr = Field(description="The action type, e.g. `TOGGLE_FEATURE_ON`.")
    sort_order: StrictInt = Field(ge=1, le=MAX_INT32, description="Actions run in ascending `sortOrder`.")
    execution_params: dict[str, Any] = Field(
        default_factory=dict, description="The action's parameters (`project`, `environment`, …)."
    )


class CreateActionsSchema(RequestModel):
    """Body of create and update (a full replacement)."""

    __qualname__ = "createActionsSchema"

    name: StrictStr = Field(min_length=1, max_length=NAME_MAX_LENGTH, description="Unique in the project.")
    description: StrictStr | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    actor_id: StrictInt = Field(ge=1, le=MAX_INT32, description="The service account the actions run as.")
    enabled: StrictBool | None = Field(
        default=None,
        description="Defaults to true on create; on update, omitting it keeps the current value.",
    )
    actions: list[CreateActionSchema] = Field(description="At least one action.")
    match: CreateActionsSchemaMatch


class ExplainActionsSchema(RequestModel):
    """Body of the dry run: a payload to test, or the id of a stored signal whose payload to use."""

    __qualname__ = "explainActionsSchema"

    payload: dict[str, Any] | None = None
    signal_id: StrictInt | None = Field(default=None, ge=1, le=2**63 - 1)


# --- action sets ------------------------------------------------------------------------------------


class ActionSchema(_StrictWire):
    __qualname__ = "actionSchema"

    id: int = Field(ge=1)
    created_at: DateTimeText
    created_by_user_id: int
    action: str
    sort_order: int = Field(ge=1)
    execution_params: dict[str, Any] = Field(default_factory=dict)


class ActionsSchemaMatch(_StrictWire):
    source: Literal["signal-endpoint"]
    source_id: int
    payload: dict[str, Any]


class ActionsSchema(_StrictWire):
    """A stored action set."""

    __qualname__ = "actionsSchema"

    id: int = Field(ge=1)
    project: str
    created_at: DateTimeText
    created_by_user_id: int
    name: str
    description: str | None = None
    actor_id: int = Field(ge=1)
    enabled: bool = True
    actions: list[ActionSchema]
    match: ActionsSchemaMatch


class ActionsListSchema(_StrictWire):
    __qualname__ = "actionsListSchema"

    actions: list[ActionsSchema]


class ActionDefinitionParameterSchema(_StrictWire):
    __qualname__ = "actionDefinitionParameterSchema"

    name: Literal["project", "environment", "featureName", "tag"]
    label: str
    type: Literal["select", "hidden"]
    optional: bool = True
    options: list[str] | None = None


class ActionDefinitionSchema(_StrictWire):
    __qualname__ = "actionDefinitionSchema"

    label: str
    description: str
    category: str
    permissions: list[str]
    parameters: list[ActionDefinitionParameterSchema]


class ActionDefinitionsConfigSchema(_StrictWire):
    __qualname__ = "actionDefinitionsConfigSchema"

    # The keys are Unleash's action type names, not camelCase aliases of Python names.
    model_config = ConfigDict(extra="forbid", alias_generator=None)

    TOGGLE_FEATURE_ON: ActionDefinitionSchema | None = None
    TOGGLE_FEATURE_OFF: ActionDefinitionSchema | None = None
    TOGGLE_FEATURES_ON_BY_TAG: ActionDefinitionSchema | None = None
    TOGGLE_FEATURES_OFF_BY_TAG: ActionDefinitionSchema | None = None


class FilterExplanationSchema(_StrictWire):
    __qualname__ = "filterExplanationSchema"

    parameter: str = Field(description="The flattened payload path the filter reads.")
    operator: str
    passed: bool
    seen: str | None = Field(description="The value the operator saw; null when the path is absent.")
    reason: str


class ActionSetWarningSchema(_StrictWire):
    __qualname__ = "actionSetWarningSchema"

    path: str = Field(description="JSON pointer into the action set body, e.g. `/match/payload/alerts.0.x`.")
    code: Literal[
        "source-missing",
        "unknown-key",
        "case-insensitive-ignored",
        "empty-values",
        "flag-missing",
        "flag-archived",
        "tag-unused",
    ] = Field(description="Stable code of the warning (docs/filters.md).")
    message: str


class ActionSetWarningsSchema(_StrictWire):
    """What may keep a valid action set from doing what its author meant (switchman extension)."""

    __qualname__ = "actionSetWarningsSchema"

    warnings: list[ActionSetWarningSchema]
    suggested_keys: list[str] = Field(
        description="The flattened keys of the newest signal of the set's signal endpoint, as Unleash's UI "
        "suggests filter keys; empty before the first signal."
    )


class ExplainActionsResultSchema(_StrictWire):
    __qualname__ = "explainActionsResultSchema"

    matched: bool = Field(description="Whether the action set would fire (it must also be enabled).")
    enabled: bool
    filters: list[FilterExplanationSchema]
    warnings: list[ActionSetWarningSchema] = Field(
        description="As `GET …/actions/{id}/warnings` reports them."
    )
    suggested_keys: list[str] = Field(description="As `GET …/actions/{id}/warnings` reports them.")
    normalised: dict[str, str] | None = Field(
        default=None,
        description="When the set's signal endpoint has a sender format (ADR 0021): the normalised view of "
        "the payload (`status`, `alertId`, `severity`, `title`, `source`), which filters read as "
        "`@switchman.<field>`.",
    )
    policy: PolicyVerdictSchema | None = Field(
        default=None,
        description="When the set matched and has a policy (ADR 0023): whether it would run now for this "
        "signal (at the stored signal's arrival time, or now for a payload), or why not.",
    )


# --- policy (switchman extension, ADR 0023) ----------------------------------------------------------------

_COOLDOWN_MAX = 31 * 86_400
_WINDOW_SECONDS_MAX = 7 * 86_400


class ActionSetPolicySchema(RequestModel):
    """What may run an action set whose filters passed, beyond Unleash's "every match runs"."""

    __qualname__ = "actionSetPolicySchema"

    shadow: StrictBool = Field(
        default=False, description="Decide and trace only: never change a flag (try a set on real traffic)."
    )
    cooldown_seconds: StrictInt | None = Field(
        default=None, ge=1, le=_COOLDOWN_MAX, description="At most one run within this period (a flap guard)."
    )
    window_count: StrictInt | None = Field(
        default=None, ge=2, le=10_000, description="Run only once this many matching signals arrived ..."
    )
    window_seconds: StrictInt | None = Field(
        default=None, ge=1, le=_WINDOW_SECONDS_MAX, description="... within this period (this one included)."
    )
    per_alert: StrictBool = Field(
        default=False,
        description="Count the cooldown and the window per alert identity: the sender format's "
        "`@switchman.alertId`, or the payload key `alertKey`.",
    )
    alert_key: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="A flattened payload key (as filters name them) identifying the alert; needs `perAlert`.",
    )

    restore_on_resolve: StrictBool = Field(
        default=False,
        description="When the alert resolves (the sender format's `@switchman.status` is `resolved`), put "
        "back the flag states the set's last run for that alert changed — unless changed since. Needs "
        "`perAlert` (runs and resolutions are paired by alert identity) and switchman's own flag store.",
    )

    max_changes_per_hour: StrictInt | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="A change budget: an action that would take the flag states this set changed in the "
        "last hour beyond this fails, saying so (the run fails there). Switchman's own flag store only.",
    )

    revert_after_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        le=7 * 24 * 3600,
        description="A time box: the flag states the set's first run (per alert with `perAlert`) changed are "
        "put back this long after the last matching signal, unless a new one renews them; the revert is "
        "traced as `reverted`, done once across workers and restarts. Switchman's own flag store only.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ActionSetPolicySchema:
        if (self.window_count is None) != (self.window_seconds is None):
            raise ValueError("windowCount and windowSeconds go together")
        if self.alert_key is not None and not self.per_alert:
            raise ValueError("alertKey needs perAlert: true")
        if self.restore_on_resolve and not self.per_alert:
            raise ValueError(
                "restoreOnResolve needs perAlert: true (a resolution is paired by alert identity)"
            )
        return self


class ProjectActionBudgetSchema(RequestModel):
    """A project's change budget for its action sets (switchman extension, ADR 0024)."""

    __qualname__ = "projectActionBudgetSchema"

    max_changes_per_hour: StrictInt = Field(
        ge=1,
        le=1_000_000,
        description="At most this many flag changes per hour by all of the project's action sets together; an "
        "action beyond it fails, saying so. Switchman's own flag store only.",
    )


class ProjectActionBudgetResultSchema(_StrictWire):
    __qualname__ = "projectActionBudgetResultSchema"

    project: str
    max_changes_per_hour: int
    updated_at: DateTimeText


class ActionSetPolicyResultSchema(_StrictWire):
    __qualname__ = "actionSetPolicyResultSchema"

    action_set_id: int
    shadow: bool
    cooldown_seconds: int | None
    window_count: int | None
    window_seconds: int | None
    per_alert: bool
    alert_key: str | None
    restore_on_resolve: bool
    max_changes_per_hour: int | None
    revert_after_seconds: int | None
    updated_at: DateTimeText


class PolicyVerdictSchema(_StrictWire):
    __qualname__ = "policyVerdictSchema"

    verdict: Literal["run", "suppressed", "shadow"]
    reason: str
    alert_id: str | None = Field(description="The alert identity the policy counted by (`perAlert`).")
    budget: str | None = Field(
        default=None, description="The change budget's use in the last hour, when the policy has one."
    )
    time_box: str | None = Field(
        default=None,
        description="With a time box: the open run it puts back and when, or that none is open.",
    )


# --- undo (switchman extension, ADR 0024) -----------------------------------------------------------------


class UndoRestoredSchema(_StrictWire):
    __qualname__ = "undoRestoredSchema"

    feature_name: str
    environment: str
    enabled: bool = Field(description="The state put back: the one before the run.")


class UndoSkippedSchema(_StrictWire):
    __qualname__ = "undoSkippedSchema"

    feature_name: str
    environment: str
    reason: str = Field(description="Why it was left as it is, e.g. who changed it since, and when.")


class UndoActionSetEventResultSchema(_StrictWire):
    __qualname__ = "undoActionSetEventResultSchema"

    event_id: int
    action_set_id: int
    restored: list[UndoRestoredSchema]
    skipped: list[UndoSkippedSchema]
    undone_at: DateTimeText
    undone_by: str


# --- decision trace (switchman extension, ADR 0022) -------------------------------------------------------


class DecisionSchema(_StrictWire):
    """What one action set decided for one signal, and why."""

    __qualname__ = "decisionSchema"

    id: int = Field(description="Ascending in the order decisions were recorded; a `before` cursor.")
    signal_id: int
    action_set_id: int
    project: str
    outcome: Literal["matched", "failed", "not-matched", "suppressed", "shadow", "restored", "reverted"] = (
        Field(
            description="`matched`: every filter passed and the run succeeded; `failed`: every filter passed "
            "and the run failed (its event says which action); `not-matched`: a filter failed; `suppressed`: "
            "the set's policy held the run back (`policy` says why); `shadow`: the set is in shadow mode and "
            "would have run; `restored`: the signal resolved an alert and the set's last run for it was put "
            "back (`policy` lists what was restored and what was skipped, and why); `reverted`: the time box this "
            "signal last renewed ended and the set's open run (`eventId`) was put back — a second entry for the "
            "signal, recorded when the box ended (ADR 0025)."
        )
    )
    event_id: int | None = Field(description="The run's action set event; null when nothing ran.")
    alert_id: str | None = Field(description="The alert identity a per-alert policy counted by.")
    policy: str | None = Field(description="The set's policy's reason, when it has a policy (ADR 0023).")
    reasons: list[FilterExplanationSchema] = Field(
        description="For a match, every filter with the value it saw; otherwise the filter that failed."
    )
    created_at: DateTimeText


class DecisionsSchema(_StrictWire):
    __qualname__ = "decisionsSchema"

    decisions: list[DecisionSchema]


class SignalTraceSchema(_StrictWire):
    """A signal and the decision of each enabled action set of its source when it was processed."""

    __qualname__ = "signalTraceSchema"

    signal_id: int
    source: str
    source_id: int
    created_at: DateTimeText
    state: Literal["pending", "processed"] = Field(
        description="`pending`: the worker has not processed it yet, so there are no decisions yet."
    )
    normalised: dict[str, str] | None = Field(
        description="The sender format's normalised view of the payload (ADR 0021); null without a format."
    )
    decisions: list[DecisionSchema] = Field(description="By action set id.")


# --- backtest (switchman extension, issue 14) ----------------------------------------------------------------


class BacktestActionsSchema(RequestModel):
    """Which stored signals of the set's endpoint to replay: the newest `limit` (in `from`/`to` when given)."""

    __qualname__ = "backtestActionsSchema"

    limit: StrictInt = Field(default=1000, ge=1, le=10_000, description="At most this many signals, newest.")
    from_: datetime | None = Field(
        default=None, alias="from", description="Only signals created at or after."
    )
    to: datetime | None = Field(default=None, description="Only signals created before.")
    action_set: CreateActionsSchema | None = Field(
        default=None,
        description="A draft (unsaved) action set to backtest instead: a create body. Only with "
        "`POST …/actions/backtest`.",
    )
    policy: ActionSetPolicySchema | None = Field(
        default=None,
        description="The policy to replay with (ADR 0023): by default a saved set's own, none for a draft. "
        "Its decisions are replayed from an empty state.",
    )


class BacktestRunSchema(_StrictWire):
    __qualname__ = "backtestRunSchema"

    signal_id: int
    created_at: str
    actions: list[dict[str, Any]] = Field(description="The actions the run would have executed, in order.")


class BacktestFlagSchema(_StrictWire):
    __qualname__ = "backtestFlagSchema"

    target: str = Field(description="A flag name, or `tag <type>:<value>` for a by-tag action.")
    environment: str
    changes: int = Field(description="Actions that would have changed its state (the first always counts).")
    final_state: Literal["on", "off"] | None


class BacktestNotMatchedSchema(_StrictWire):
    __qualname__ = "backtestNotMatchedSchema"

    parameter: str = Field(description="The first filter that failed.")
    signals: int


class BacktestHeldBackSchema(_StrictWire):
    __qualname__ = "backtestHeldBackSchema"

    signal_id: int
    created_at: str
    verdict: Literal["suppressed", "shadow"]
    reason: str
    alert_id: str | None


class BacktestActionsResultSchema(_StrictWire):
    __qualname__ = "backtestActionsResultSchema"

    signals: int = Field(description="Stored signals replayed (oldest first).")
    matched: int = Field(description="Signals whose filters passed (runs, and those a policy held back).")
    runs: list[BacktestRunSchema]
    flags: list[BacktestFlagSchema] = Field(
        description="The resulting flag states, per target and environment."
    )
    not_matched: list[BacktestNotMatchedSchema] = Field(
        description="Why the others did not match, by filter."
    )
    held_back: list[BacktestHeldBackSchema] = Field(
        default_factory=list,
        description="Matching signals the policy would have suppressed or run in shadow mode (ADR 0023).",
    )


# --- action set events (founding document `get-actions-events`) ---------------------------------------


class ActionSetEventSchemaState(StrEnum):
    """The state of the action set event. Can be one of `started`, `success`, or `failed`."""

    STARTED = "started"
    SUCCESS = "success"
    FAILED = "failed"


class ActionEventSchemaState(StrEnum):
    """The state of the action. Can be one of `not started`, `started`, `success`, or `failed`."""

    NOT_STARTED = "not started"
    STARTED = "started"
    SUCCESS = "success"
    FAILED = "failed"


class SignalSchemaSource(StrEnum):
    """The signal source type."""

    SIGNAL_ENDPOINT = "signal-endpoint"


class ActionSetEventSchemaActionSetMatchSource(StrEnum):
    """Match the source of the signal."""

    SIGNAL_ENDPOINT = "signal-endpoint"


class SignalSchemaPayload(BaseModel):
    """The payload of the signal."""

    model_config = ConfigDict(extra="allow")


class SignalSchema(_StrictWire):
    """An object describing a signal."""

    __qualname__ = "signalSchema"

    id: int = Field(description="The signal's ID. Signal IDs are incrementing integers.")
    payload: SignalSchemaPayload = Field(default_factory=SignalSchemaPayload)
    created_at: DateTimeText = Field(description="The date and time of when the signal was created.")
    source: SignalSchemaSource
    source_id: int = Field(description="The ID of the source that created this signal.")
    created_by_source_token_id: int | None = Field(
        default=None, description="The ID of the source token that created this signal."
    )


class ActionEventSchema(_StrictWire):
    """An object describing an action event."""

    __qualname__ = "actionEventSchema"

    id: int = Field(description="The id of the action")
    created_at: DateTimeText = Field(description="The date and time of when the action was created.")
    created_by_user_id: int = Field(description="The id of user that created this action set")
    action: str = Field(description="The name of the action to execute")
    sort_order: int = Field(description="The order in which the action should be executed")
    execution_params: dict[str, Any] = Field(
        default_factory=dict, description="A map of parameters to pass to the action"
    )
    state: ActionEventSchemaState
    details: str | None = Field(default=None, description="The details of the action event, if any.")


class ActionSetEventSchemaActionSetMatch(WireModel):
    """Defines a matching rule for the signal that will trigger the action set."""

    source: ActionSetEventSchemaActionSetMatchSource
    source_id: float = Field(description="Match the source id of the signal")
    payload: dict[str, Any] = Field(description="Match the payload of the signal")


class ActionSetEventSchemaActionSet(_StrictWire):
    """The action set this action set event belongs to, with each action decorated with its state."""

    id: int = Field(description="The ID of the action set.")
    project: str = Field(description="The project that this action set belongs to.")
    created_at: DateTimeText = Field(description="The date and time of when the action set was created.")
    created_by_user_id: int = Field(description="The ID of the user that created this action set.")
    name: str = Field(description="The name of the action set")
    description: str | None = Field(default=None, description="The description of the action set")
    actor_id: int = Field(description="The id of the service account that will execute the action")
    enabled: bool = Field(default=True, description="Whether this action set is enabled or not")
    actions: list[ActionEventSchema] = Field(
        description="The list of actions executed in sequential order when the action set was triggered, "
        "decorated with the individual action states."
    )
    match: ActionSetEventSchemaActionSetMatch


class ActionSetEventSchema(_StrictWire):
    """An object describing an action event."""

    __qualname__ = "actionSetEventSchema"

    id: int = Field(description="The action set event's ID. Action set event IDs are incrementing integers.")
    action_set_id: int = Field(description="The ID of the action set that the action set event belongs to.")
    signal_id: int = Field(description="The ID of the signal that triggered this action set event.")
    created_at: DateTimeText = Field(
        description="The date and time of when the action set event was created."
    )
    state: ActionSetEventSchemaState
    signal: SignalSchema
    action_set: ActionSetEventSchemaActionSet


class ActionSetEventsSchema(_StrictWire):
    """A response model with a list of action set events."""

    __qualname__ = "actionSetEventsSchema"

    action_set_events: list[ActionSetEventSchema] = Field(description="A list of action set events.")


class _ErrorBody(BaseModel):
    id: str | None = Field(default=None, description="The ID of the error instance")
    name: str | None = Field(default=None, description="The name of the error kind")
    message: str | None = Field(default=None, description="A description of what went wrong.")


class GetActionsEventsRequestUnauthorizedError(_ErrorBody):
    pass


class GetActionsEventsRequestForbiddenError(_ErrorBody):
    pass


class GetActionsEventsRequestNotFoundError(_ErrorBody):
    pass
