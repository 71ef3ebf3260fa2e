"""An action set's policy: may a signal that passed the filters run the set now? (pure; ADR 0023)

A policy is switchman's own addition to an action set (a set without one runs on every match, exactly as
Unleash's does):

- `shadow`: the set decides and is traced, but never changes a flag (for trying a set on real traffic);
- `cooldown_seconds`: at most one run within this period — a flap guard;
- `window_count` / `window_seconds`: run only once at least this many matching signals arrived within the
  period (this one included);
- `per_alert`: the cooldown and the window count per alert identity (the sender format's `alertId`, or
  the payload key `alert_key`) instead of per set;
- `restore_on_resolve` (with `per_alert`): when the alert resolves (the sender format's status is
  `resolved`), the flag states the set's last run for that alert changed are put back (ADR 0024);
- `max_changes_per_hour`: a change budget — an action that would take the set's flag changes of the last
  hour beyond it fails, saying so (`budget_failure`; ADR 0024);
- `revert_after_seconds`: a time box — the set's first run (per alert) is put back that long after the last
  matching signal, unless another one renews it (`renew_time_box`; ADR 0025).

Time is the signals' own arrival time, not the worker's clock, so a backlog processed late is decided as
it would have been on time, and a backtest over stored signals decides the same way.

The state a decision reads (`PolicyState`) is what earlier decisions of the set (or of the set and alert)
left: the arrival time of the last run (a shadow run counts for a shadow set) and the arrival times of
the latest matching signals, at most `window_count - 1` of them. `decide` returns the verdict and the
state to store after this signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class Policy:
    shadow: bool = False
    cooldown_seconds: int | None = None
    window_count: int | None = None
    window_seconds: int | None = None
    per_alert: bool = False
    alert_key: str | None = None  # a flattened payload key; None: the sender format's `alertId`
    restore_on_resolve: bool = False
    max_changes_per_hour: int | None = None  # a change budget: a run that would exceed it fails
    revert_after_seconds: int | None = None  # a time box: the run is put back unless renewed in time

    @property
    def stateful(self) -> bool:
        """Whether decisions depend on earlier ones (a cooldown or a window)."""
        return bool(self.cooldown_seconds) or (self.window_count is not None and self.window_count > 1)

    @property
    def keeps_open_run(self) -> bool:
        """Whether the set's first run (per alert) is remembered to be put back later."""
        return self.restore_on_resolve or self.revert_after_seconds is not None


@dataclass(frozen=True)
class PolicyState:
    last_run_at: datetime | None = None
    matches: tuple[datetime, ...] = field(default_factory=tuple)  # newest last, bounded
    open_event: int | None = None  # the alert's first run not yet put back (restore on resolve, time box)
    revert_due: datetime | None = None  # time box: when the open run is put back unless renewed
    renewed_by: int | None = None  # time box: the signal that last set `revert_due`


class Verdict(StrEnum):
    RUN = "run"
    SUPPRESSED = "suppressed"
    SHADOW = "shadow"


@dataclass(frozen=True)
class PolicyDecision:
    verdict: Verdict
    reason: str  # one human sentence, recorded in the trace
    state: PolicyState  # to store after this signal


def decide(policy: Policy, state: PolicyState, at: datetime) -> PolicyDecision:
    """The verdict for a signal that arrived `at` and passed the set's filters, given `state`.

    The window is checked first (a signal that does not complete it is suppressed, whatever the
    cooldown), then the cooldown — which holds back signals that arrived within the period on either side
    of the last run, since concurrent workers may decide an earlier arrival later; a shadow set's would-be
    run is `shadow`. Every matching signal counts towards the window, suppressed ones included."""
    matches = state.matches
    if policy.window_count is not None and policy.window_count > 1 and policy.window_seconds:
        since = at - timedelta(seconds=policy.window_seconds)
        matches = (*tuple(t for t in matches if since < t <= at), at)[-(policy.window_count - 1) :]
        seen = len([t for t in state.matches if since < t <= at]) + 1
        if seen < policy.window_count:
            return PolicyDecision(
                Verdict.SUPPRESSED,
                f"window: {seen} of {policy.window_count} matching signals within {policy.window_seconds} s",
                replace(state, matches=matches),
            )
    else:
        matches = ()
    if policy.cooldown_seconds and state.last_run_at is not None:
        cooldown = timedelta(seconds=policy.cooldown_seconds)
        until = state.last_run_at + cooldown
        # Either side of the last run: workers decide batches concurrently, so a signal that arrived
        # just before the run may be decided after it; it must not make a second run in the period.
        if abs(at - state.last_run_at) < cooldown:
            return PolicyDecision(
                Verdict.SUPPRESSED,
                f"cooldown: the set ran for a signal of {_iso(state.last_run_at)}; it may run again for "
                f"signals from {_iso(until)}",
                replace(state, matches=matches),
            )
    last = state.last_run_at
    ran = replace(state, last_run_at=at if last is None else max(last, at), matches=matches)
    if policy.shadow:
        return PolicyDecision(Verdict.SHADOW, "shadow mode: the set would have run; no flag was changed", ran)
    return PolicyDecision(Verdict.RUN, "the policy allows the run", ran)


def budget_failure(
    budget: int | None,
    *,
    used: int,
    would_change: int,
    spender: str = "this action set",
    rule: str = "policy",
) -> str | None:
    """Why an action may not run under a change budget of `budget` flag changes per hour, of which
    `spender` used `used` (None: it may). A set's budget is its policy's; a project's, its own (ADR 0024)."""
    if budget is None or would_change == 0 or used + would_change <= budget:
        return None
    return (
        f"change budget exhausted: {spender} changed {used} flag state(s) in the last hour and its {rule} "
        f"allows {budget}; this action would change {would_change} more"
    )


def renew_time_box(
    policy: Policy, state: PolicyState, *, at: datetime, signal_id: int, running: bool
) -> PolicyState:
    """The state after a signal that arrived `at` and passed the set's filters: a set with a time box puts
    its open run back `revert_after_seconds` after the latest such signal, so a run (`running`) starts the
    box and any matching signal while it is open — run or held back — renews it. A shadow decision is not
    `running` and opens nothing. The due time never moves back (signals may be decided out of order)."""
    if policy.revert_after_seconds is None or not (running or state.open_event is not None):
        return state
    due = at + timedelta(seconds=policy.revert_after_seconds)
    if state.revert_due is not None and state.revert_due >= due:
        return state
    return replace(state, revert_due=due, renewed_by=signal_id)


def time_box_due(state: PolicyState, now: datetime) -> bool:
    """Whether the open run must be put back now."""
    return state.open_event is not None and state.revert_due is not None and state.revert_due <= now


def time_box_reason(policy: Policy, state: PolicyState) -> str:
    """The trace's words for a revert: which signal last renewed the box, and the box's length."""
    assert state.revert_due is not None and policy.revert_after_seconds is not None
    return (
        f"time box: no matching signal for {policy.revert_after_seconds} s after signal {state.renewed_by}; "
        f"due at {_iso(state.revert_due)}"
    )


RESOLVED_KEY = "@switchman.status"


def resolves(flat: Mapping[str, object]) -> bool:
    """Whether the signal says its alert resolved (the sender format's normalised status)."""
    return flat.get(RESOLVED_KEY) == "resolved"


def alert_identity(policy: Policy, flat: Mapping[str, object]) -> str:
    """The alert a per-alert policy counts by: the value of `alert_key` (or of the sender format's
    `@switchman.alertId`) in the flattened payload; "" when not per alert or when the signal names none
    (such signals share one count)."""
    if not policy.per_alert:
        return ""
    value = flat.get(policy.alert_key or "@switchman.alertId")
    return str(value)[:255] if value is not None else ""


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
