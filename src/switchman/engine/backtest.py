"""Backtest: what an action set would have done over stored signals (pure; issue 14, part 3).

Given the set's filters and actions and the signals (oldest first, each with its flattened keys), it says
which signals would have matched — and for the others, the first filter that failed — which runs would
have happened, and which flag states would have resulted. Nothing is changed. Without a policy every
matching signal is a run; with one (ADR 0023), its decisions are replayed from an empty state, so the
answer also says which matches it would have held back, and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from switchman.engine.actions import (
    TOGGLE_FEATURE_OFF,
    TOGGLE_FEATURE_ON,
    TOGGLE_FEATURES_OFF_BY_TAG,
    TOGGLE_FEATURES_ON_BY_TAG,
)
from switchman.engine.constraints import evaluate_filter
from switchman.engine.matching import CompiledFilters
from switchman.engine.policy import Policy, PolicyState, Verdict, alert_identity, decide

_TARGET_STATES = {
    TOGGLE_FEATURE_ON: "on",
    TOGGLE_FEATURE_OFF: "off",
    TOGGLE_FEATURES_ON_BY_TAG: "on",
    TOGGLE_FEATURES_OFF_BY_TAG: "off",
}


@dataclass(frozen=True)
class BacktestSignal:
    id: int
    created_at: str
    flat: Mapping[str, object]  # the payload's flattened keys, and the sender format's normalised ones
    arrived: datetime | None = None  # when it was stored: the time a policy decides by


@dataclass(frozen=True, slots=True)
class ReplayedSignal:
    """A signal as the answer names it. Its flattened keys are not kept: the signals stream through the
    replay one at a time, and only the matching ones are named in the answer."""

    id: int
    created_at: str


@dataclass(frozen=True)
class PlannedAction:
    action: str
    sort_order: int
    execution_params: Mapping[str, Any]


@dataclass
class FlagOutcome:
    """The simulated state of one target (a flag, or the flags of a tag) in one environment."""

    target: str
    environment: str
    changes: int = 0  # actions that set a state different from the one before (the first always counts)
    final_state: str | None = None


@dataclass
class BacktestResult:
    considered: int = 0
    runs: list[tuple[ReplayedSignal, Sequence[PlannedAction]]] = field(default_factory=list)
    not_matched: Counter[str] = field(default_factory=Counter)  # first failing filter → signals
    flags: dict[tuple[str, str], FlagOutcome] = field(default_factory=dict)
    matched: int = 0  # signals whose filters passed (runs, held back and shadow runs)
    held_back: list[tuple[ReplayedSignal, Verdict, str, str]] = field(
        default_factory=list
    )  # verdict, why, alert


def backtest(
    compiled: CompiledFilters,
    actions: Sequence[PlannedAction],
    signals: Iterable[BacktestSignal],
    policy: Policy | None = None,
) -> BacktestResult:
    """Run the set's matching, its policy and its actions' effect over `signals`, oldest first (read once,
    in order: a generator keeps one signal's flattened keys alive at a time)."""
    result = BacktestResult()
    states: dict[str, PolicyState] = {}
    for signal in signals:
        result.considered += 1
        failed = _first_failure(compiled, signal.flat)
        if failed is not None:
            result.not_matched[failed] += 1
            continue
        result.matched += 1
        named = ReplayedSignal(signal.id, signal.created_at)
        if policy is not None and signal.arrived is not None:
            alert = alert_identity(policy, signal.flat)
            decided = decide(policy, states.get(alert, PolicyState()), signal.arrived)
            states[alert] = decided.state
            if decided.verdict != Verdict.RUN:
                result.held_back.append((named, decided.verdict, decided.reason, alert))
                continue
        result.runs.append((named, actions))
        for action in actions:
            _apply(result.flags, action)
    return result


def _first_failure(compiled: CompiledFilters, flat: Mapping[str, object]) -> str | None:
    if compiled.filters is None:
        return "(the filters are not an object)"
    for item in compiled.filters:
        if not evaluate_filter(item, flat).passed:
            return item.parameter
    return None


def _apply(flags: dict[tuple[str, str], FlagOutcome], action: PlannedAction) -> None:
    state = _TARGET_STATES.get(action.action)
    params = action.execution_params
    if state is None:
        return
    tag = params.get("tag")
    target = f"tag {tag}" if tag is not None else str(params.get("featureName"))
    environment = str(params.get("environment"))
    outcome = flags.setdefault((target, environment), FlagOutcome(target, environment))
    if outcome.final_state != state:
        outcome.changes += 1
    outcome.final_state = state
