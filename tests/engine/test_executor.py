"""The run state machine: order, stop at first failure, details, invariants."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from switchman.engine.executor import (
    ActionFailed,
    ActionState,
    ActionStep,
    EventState,
    InvariantViolation,
    check_invariants,
    order_steps,
    run_actions,
    truncate_details,
)

NS, ST, OK, KO = ActionState.NOT_STARTED, ActionState.STARTED, ActionState.SUCCESS, ActionState.FAILED


def steps(*orders: tuple[int, int]) -> list[ActionStep]:
    return [
        ActionStep(id=i, action="TOGGLE_FEATURE_ON", sort_order=s, execution_params={}) for i, s in orders
    ]


class Recorder:
    """Collects the callbacks' view of the run; fails the steps whose ids are in `failures`."""

    def __init__(self, failures: dict[int, BaseException] | None = None) -> None:
        self.failures = failures or {}
        self.performed: list[int] = []
        self.snapshots: list[list[tuple[int, ActionState, str | None]]] = []

    async def perform(self, step: ActionStep) -> None:
        assert step.state == ST
        self.performed.append(step.id)
        if step.id in self.failures:
            raise self.failures[step.id]

    async def progress(self, current: Sequence[ActionStep]) -> None:
        self.snapshots.append([(s.id, s.state, s.details) for s in current])


def test_order_steps_by_sort_order_then_id() -> None:
    ordered = order_steps(steps((5, 2), (3, 1), (1, 2), (9, 1), (2, 10)))
    assert [s.id for s in ordered] == [3, 9, 1, 5, 2]


async def test_all_succeed() -> None:
    run = steps((1, 2), (2, 1), (3, 3))
    recorder = Recorder()
    state = await run_actions(run, recorder.perform, recorder.progress)
    assert state == EventState.SUCCESS
    assert recorder.performed == [2, 1, 3]
    assert all(s.state == OK and s.details is None for s in run)
    check_invariants(run, state)
    # every transition is reported: started then success for each step, in run order
    assert [[st for _, st, _ in snap] for snap in recorder.snapshots] == [
        [ST, NS, NS], [OK, NS, NS], [OK, ST, NS], [OK, OK, NS], [OK, OK, ST], [OK, OK, OK],
    ]  # fmt: skip
    for snapshot in recorder.snapshots:
        check_invariants(
            [ActionStep(i, "x", n, {}, st, d) for n, (i, st, d) in enumerate(snapshot)], EventState.STARTED
        )


async def test_first_failure_stops_the_run() -> None:
    run = steps((1, 1), (2, 2), (3, 3))
    recorder = Recorder({2: ActionFailed("Could not find feature flag with name f1")})
    state = await run_actions(run, recorder.perform, recorder.progress)
    assert state == EventState.FAILED
    assert recorder.performed == [1, 2]
    assert [(s.state, s.details) for s in run] == [
        (OK, None), (KO, "Could not find feature flag with name f1"), (NS, None),
    ]  # fmt: skip
    assert recorder.snapshots[-1] == [
        (1, OK, None),
        (2, KO, "Could not find feature flag with name f1"),
        (3, NS, None),
    ]
    check_invariants(run, state)


async def test_first_step_failing() -> None:
    run = steps((1, 1), (2, 2))
    state = await run_actions(run, Recorder({1: ActionFailed("no")}).perform, Recorder().progress)
    assert state == EventState.FAILED
    assert [s.state for s in run] == [KO, NS]
    check_invariants(run, state)


@pytest.mark.parametrize(
    ("error", "details"),
    [
        (ActionFailed("exact message"), "exact message"),
        (ActionFailed(""), ""),
        (KeyError("f1"), "KeyError: 'f1'"),
        (RuntimeError("boom"), "RuntimeError: boom"),
        (RuntimeError(), "RuntimeError"),
        (ActionFailed("x" * 300), "x" * 254 + "…"),
        (ValueError("y" * 300), "ValueError: " + "y" * 242 + "…"),
    ],
)
async def test_failure_details(error: Exception, details: str) -> None:
    run = steps((1, 1))
    await run_actions(run, Recorder({1: error}).perform, Recorder().progress)
    assert run[0].details == details
    assert len(details) <= 255


async def test_cancellation_propagates_and_leaves_the_step_started() -> None:
    import asyncio

    run = steps((1, 1), (2, 2))
    with pytest.raises(asyncio.CancelledError):
        await run_actions(run, Recorder({1: asyncio.CancelledError()}).perform, Recorder().progress)
    assert [s.state for s in run] == [ST, NS]
    check_invariants(run, EventState.STARTED)


async def test_progress_errors_propagate() -> None:
    async def broken(_: Sequence[ActionStep]) -> None:
        raise OSError("database gone")

    with pytest.raises(OSError, match="database gone"):
        await run_actions(steps((1, 1)), Recorder().perform, broken)


async def test_steps_must_start_not_started() -> None:
    run = steps((1, 1))
    run[0].state = OK
    with pytest.raises(ValueError, match="not started"):
        await run_actions(run, Recorder().perform, Recorder().progress)


async def test_no_steps_is_success() -> None:
    assert await run_actions([], Recorder().perform, Recorder().progress) == EventState.SUCCESS


def test_truncate_details() -> None:
    assert truncate_details("short") == "short"
    assert truncate_details("a" * 255) == "a" * 255
    assert truncate_details("a" * 256) == "a" * 254 + "…"
    assert len(truncate_details("a" * 10_000)) == 255


def states(*values: ActionState, failed_details_after: bool = False) -> list[ActionStep]:
    run = [ActionStep(i, "x", i, {}, v) for i, v in enumerate(values)]
    if failed_details_after:
        run[-1].details = "should not be there"
    return run


@pytest.mark.parametrize(
    ("run", "state"),
    [
        (states(OK, OK), EventState.SUCCESS),
        (states(), EventState.SUCCESS),
        (states(OK, KO, NS), EventState.FAILED),
        (states(KO), EventState.FAILED),
        (states(NS, NS), EventState.STARTED),
        (states(OK, ST, NS), EventState.STARTED),
        (states(OK, OK), EventState.STARTED),
    ],
)
def test_invariants_hold(run: list[ActionStep], state: EventState) -> None:
    check_invariants(run, state)


@pytest.mark.parametrize(
    ("run", "state"),
    [
        (states(OK, NS), EventState.SUCCESS),
        (states(OK, KO), EventState.SUCCESS),
        (states(OK, OK), EventState.FAILED),
        (states(), EventState.FAILED),
        (states(KO, KO), EventState.FAILED),
        (states(KO, OK), EventState.FAILED),
        (states(NS, KO), EventState.FAILED),
        (states(KO, ST), EventState.FAILED),
        (states(KO, NS, failed_details_after=True), EventState.FAILED),
        (states(ST, ST), EventState.STARTED),
        (states(NS, OK), EventState.STARTED),
        (states(KO), EventState.STARTED),
    ],
)
def test_invariants_violated(run: list[ActionStep], state: EventState) -> None:
    with pytest.raises(InvariantViolation):
        check_invariants(run, state)


def test_invariants_accept_plain_strings() -> None:
    run = [ActionStep(1, "x", 1, {}, "success"), ActionStep(2, "x", 2, {}, "failed")]  # type: ignore[arg-type]
    check_invariants(run, "failed")  # type: ignore[arg-type]
