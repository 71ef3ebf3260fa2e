"""The outbox is written with the outcome (ADR 0027): rolled back with it, and for the trust features' put-backs
(a time box that ended), on both databases."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from switchman.engine.executor import ActionStep, EventState
from switchman.notifications.outbox import enqueue_runs
from switchman.runtime import Runtime
from switchman.timeutil import utcnow
from switchman.worker.loop import SignalWorker
from tests.notifications.conftest import add_channel, outbox
from tests.worker.conftest import Scenario, drain, remote_worker, toggle

ACTIONS = "/api/admin/projects/default/actions"


@dataclass(frozen=True)
class _Set:
    id: int
    name: str = "a set"
    project: str = "default"


@dataclass(frozen=True)
class _Run:
    action_set: _Set
    signal_id: int = 1
    event_id: int | None = 7
    state: str = EventState.FAILED
    steps: list[ActionStep] = field(default_factory=list)


class _Boom(Exception):
    pass


async def test_messages_are_rolled_back_with_their_transaction_and_kept_with_its_commit(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    await add_channel(client, name="all")
    db = app.state.runtime.db

    async def enqueue_then_fail() -> None:
        async with db.transaction() as conn:
            assert await enqueue_runs(conn, [_Run(_Set(set_id))]) == 1
            raise _Boom

    with pytest.raises(_Boom):
        await enqueue_then_fail()
    assert await outbox(db) == []
    async with db.transaction() as conn:
        await enqueue_runs(conn, [_Run(_Set(set_id))])
    [message] = await outbox(db)
    assert message.event_type == "failure" and message.payload["eventId"] == 7


async def test_no_channel_no_message_and_other_projects_are_not_told(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    db = app.state.runtime.db
    async with db.transaction() as conn:
        assert await enqueue_runs(conn, [_Run(_Set(set_id))]) == 0
        assert await enqueue_runs(conn, []) == 0
    await add_channel(client, name="default-only")
    async with db.transaction() as conn:
        assert await enqueue_runs(conn, [_Run(_Set(set_id, project="elsewhere"))]) == 0
    assert await outbox(db) == []


async def test_a_time_box_that_ends_is_announced_as_reverted(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    await client.post(f"/api/admin/projects/default/features/{scenario.feature}/environments/production/on")
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)])
    answer = await client.put(f"{ACTIONS}/{set_id}/policy", json={"revertAfterSeconds": 60})
    assert answer.status_code == 200, answer.text
    channel = await add_channel(client, name="reverts", events=["reverted"])
    await scenario.send(client, {})
    await drain(worker)
    ctx: Runtime = app.state.runtime
    assert await outbox(ctx.db) == []  # the run itself is not wanted
    assert worker.time_boxes is not None
    assert await worker.time_boxes.sweep(now=utcnow() + timedelta(hours=1)) == 1
    [message] = await outbox(ctx.db)
    assert (message.channel_id, message.event_type) == (channel["id"], "reverted")
    payload = message.payload
    assert payload["actionSetId"] == set_id and payload["by"].endswith("(time box)")
    assert payload["restored"] == [
        {"featureName": scenario.feature, "environment": "production", "enabled": True}
    ]


async def test_a_remote_unleash_run_writes_its_message_with_its_final_state(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario
) -> None:
    ctx: Runtime = app.state.runtime
    set_id = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_OFF", "checkout", 1), toggle("TOGGLE_FEATURE_ON", "missing", 2)]
    )
    await add_channel(client, name="remote", events=["failure"])
    await scenario.send(client, {})
    async with remote_worker(app, []) as remote:
        await drain(remote)
    [message] = await outbox(ctx.db)
    assert message.event_type == "failure" and message.payload["actionSetId"] == set_id
    assert [action["state"] for action in message.payload["actions"]] == ["success", "failed"]
