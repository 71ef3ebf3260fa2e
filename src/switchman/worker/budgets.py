"""Change budgets as a batch spends them (embedded store, ADR 0024).

Before each action, the flag store says how many flag states it would change; the action runs only if
that fits both the set's budget (its policy's `maxChangesPerHour`) and its project's. Each budget's use is
read once per batch — the changes recorded in the last hour — and then counted here as the batch's actions
change flags; the budgets cannot be spent by another worker meanwhile, since the batch holds the set's and
the project's budget locks (`BatchLookups.prepare`).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets.event_changes import changes_since
from switchman.engine.policy import budget_failure
from switchman.timeutil import utcnow
from switchman.worker.matching import BatchLookups
from switchman.worker.runs import PlannedRun

_HOUR = timedelta(hours=1)


class ChangeBudgets:
    def __init__(self, conn: AsyncConnection, lookups: BatchLookups) -> None:
        self._conn = conn
        self._lookups = lookups
        self._sets: dict[int, int] = {}  # flag changes of the last hour, per budgeted set
        self._projects: dict[str, int] = {}  # … and per budgeted project

    def budgeted(self, run: PlannedRun) -> bool:
        """Whether an action of `run` must be checked (asking the flag store costs a lookup)."""
        policy = self._lookups.policy_of(run.action_set.id)
        return (
            policy is not None and policy.max_changes_per_hour is not None
        ) or self._lookups.project_budget_of(run.action_set.project) is not None

    async def refusal(self, run: PlannedRun, would_change: int) -> str | None:
        """Why an action of `run` that would change `would_change` flag states may not run (None: it may)."""
        if would_change == 0:
            return None
        action_set, since = run.action_set, utcnow() - _HOUR
        policy = self._lookups.policy_of(action_set.id)
        if policy is not None and policy.max_changes_per_hour is not None:
            if action_set.id not in self._sets:
                self._sets[action_set.id] = await changes_since(
                    self._conn, since=since, action_set_id=action_set.id
                )
            failure = budget_failure(
                policy.max_changes_per_hour, used=self._sets[action_set.id], would_change=would_change
            )
            if failure is not None:
                return failure
        budget = self._lookups.project_budget_of(action_set.project)
        if budget is not None:
            if action_set.project not in self._projects:
                self._projects[action_set.project] = await changes_since(
                    self._conn, since=since, project=action_set.project
                )
            return budget_failure(
                budget,
                used=self._projects[action_set.project],
                would_change=would_change,
                spender=f"project {action_set.project}'s action sets",
                rule="project budget",
            )
        return None

    def spend(self, run: PlannedRun, changed: int) -> None:
        """Count `changed` flag changes an action of `run` made."""
        if run.action_set.id in self._sets:
            self._sets[run.action_set.id] += changed
        if run.action_set.project in self._projects:
            self._projects[run.action_set.project] += changed
