"""What the trace records of one (signal, action set) decision, and why (pure; ADR 0022).

An outcome per enabled action set of the signal's source:

- `matched`: every filter passed and the run succeeded (its event is linked);
- `failed`: every filter passed, the run failed (an action failed; the event says which);
- `not-matched`: a filter failed — the first failing one is recorded with the value it saw;
- `suppressed`: every filter passed, the set's policy held the run back (cooldown, window; ADR 0023);
- `shadow`: every filter passed and the policy would have run it, but the set is in shadow mode;
- `restored`: the signal resolved an alert, and the set's last run for it was put back (ADR 0024);
- `reverted`: the time box this signal last renewed ended, and the set's open run was put back (ADR 0025);
  recorded when it happens, besides the signal's own decision for the set.

The reasons are the filter results that decided (`CompiledFilters.decide`): for a match, every filter with
the value it saw; otherwise the filters evaluated up to the failing one, which is last.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from switchman.engine.constraints import FilterResult


class Outcome(StrEnum):
    MATCHED = "matched"
    FAILED = "failed"
    NOT_MATCHED = "not-matched"
    SUPPRESSED = "suppressed"
    SHADOW = "shadow"
    RESTORED = "restored"
    REVERTED = "reverted"


def reasons_of(results: tuple[FilterResult, ...], *, matched: bool) -> list[dict[str, Any]]:
    """The recorded reasons: every result of a match; the failing one (the last) otherwise."""
    kept = results if matched else results[-1:]
    return [
        {
            "parameter": result.parameter,
            "operator": result.operator,
            "passed": result.passed,
            "seen": result.seen,
            "reason": result.reason,
        }
        for result in kept
    ]
