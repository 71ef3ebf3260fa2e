"""The policy decision (pure): cooldown, window, shadow, and the state each decision leaves (ADR 0023)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from switchman.engine.policy import (
    Policy,
    PolicyState,
    Verdict,
    decide,
    renew_time_box,
    time_box_due,
    time_box_reason,
)

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run_all(policy: Policy, times: list[float]) -> list[Verdict]:
    """The verdicts of matching signals arriving at `times`, each deciding on the state the last left."""
    state, verdicts = PolicyState(), []
    for t in times:
        decided = decide(policy, state, at(t))
        verdicts.append(decided.verdict)
        state = decided.state
    return verdicts


def test_no_policy_runs_every_match() -> None:
    assert run_all(Policy(), [0, 1, 2]) == [Verdict.RUN] * 3
    assert not Policy().stateful


def test_cooldown_allows_one_run_per_period() -> None:
    policy = Policy(cooldown_seconds=60)
    assert policy.stateful
    assert run_all(policy, [0, 10, 59.9, 60, 61, 130]) == [
        Verdict.RUN, Verdict.SUPPRESSED, Verdict.SUPPRESSED, Verdict.RUN, Verdict.SUPPRESSED, Verdict.RUN,
    ]  # fmt: skip
    decided = decide(policy, PolicyState(last_run_at=at(0)), at(10))
    assert decided.reason.startswith("cooldown: the set ran for a signal of 2026-12-03T09:00:00Z")
    assert "from 2026-12-03T09:01:00Z" in decided.reason
    assert decided.state.last_run_at == at(0)  # a suppressed signal does not extend the cooldown


def test_window_needs_n_matches_within_t_this_one_included() -> None:
    policy = Policy(window_count=3, window_seconds=60)
    assert run_all(policy, [0, 10, 20, 25]) == [
        Verdict.SUPPRESSED, Verdict.SUPPRESSED, Verdict.RUN, Verdict.RUN,
    ]  # fmt: skip
    # Matches that fell out of the window no longer count.
    assert run_all(policy, [0, 50, 100, 200]) == [Verdict.SUPPRESSED] * 4
    decided = decide(policy, PolicyState(matches=(at(0),)), at(30))
    assert decided.reason == "window: 2 of 3 matching signals within 60 s"
    assert decided.state.matches == (at(0), at(30))  # bounded to window_count - 1 (the newest)
    assert decide(policy, decided.state, at(40)).state.matches == (at(30), at(40))
    assert Policy(window_count=1, window_seconds=60).stateful is False


def test_window_then_cooldown() -> None:
    policy = Policy(window_count=2, window_seconds=60, cooldown_seconds=300)
    assert run_all(policy, [0, 5, 10, 400, 401]) == [
        Verdict.SUPPRESSED, Verdict.RUN, Verdict.SUPPRESSED, Verdict.SUPPRESSED, Verdict.RUN,
    ]  # fmt: skip


def test_shadow_decides_like_a_run_but_says_shadow() -> None:
    policy = Policy(shadow=True, cooldown_seconds=60)
    assert run_all(policy, [0, 30, 61]) == [Verdict.SHADOW, Verdict.SUPPRESSED, Verdict.SHADOW]
    assert "no flag was changed" in decide(policy, PolicyState(), at(0)).reason


def test_the_cooldown_holds_either_side_of_the_last_run() -> None:
    # Concurrent workers may decide a signal that arrived just before the run after it: still one run.
    policy = Policy(cooldown_seconds=60)
    assert decide(policy, PolicyState(last_run_at=at(100)), at(50)).verdict == Verdict.SUPPRESSED
    earlier = decide(policy, PolicyState(last_run_at=at(100)), at(30))
    assert earlier.verdict == Verdict.RUN
    assert earlier.state.last_run_at == at(100)  # the latest run still bounds what follows


BOXED = Policy(revert_after_seconds=600)


def test_a_run_opens_a_time_box_that_matching_signals_renew() -> None:
    opened = renew_time_box(BOXED, PolicyState(), at=at(0), signal_id=1, running=True)
    assert (opened.revert_due, opened.renewed_by) == (at(600), 1)
    opened = replace(opened, open_event=41)  # the worker records the run's event
    renewed = renew_time_box(BOXED, opened, at=at(300), signal_id=2, running=False)  # held back, still renews
    assert (renewed.revert_due, renewed.renewed_by, renewed.open_event) == (at(900), 2, 41)
    assert not time_box_due(renewed, at(899)) and time_box_due(renewed, at(900))
    assert "after signal 2" in time_box_reason(BOXED, renewed)


def test_a_time_box_never_moves_back_and_needs_an_open_run() -> None:
    opened = PolicyState(open_event=41, revert_due=at(900), renewed_by=2)
    late = renew_time_box(BOXED, opened, at=at(100), signal_id=3, running=False)  # decided out of order
    assert late == opened
    nothing_open = renew_time_box(BOXED, PolicyState(), at=at(0), signal_id=1, running=False)
    assert nothing_open == PolicyState()  # a held-back signal opens no box
    assert renew_time_box(Policy(), PolicyState(), at=at(0), signal_id=1, running=True) == PolicyState()
    assert not time_box_due(PolicyState(revert_due=at(0)), at(10))  # no open run: nothing to put back
    assert BOXED.keeps_open_run and not Policy(cooldown_seconds=5).keeps_open_run
