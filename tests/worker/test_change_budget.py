"""Change budgets (ADR 0024): at most K flag changes per action set per hour; an action that would go beyond
fails saying so, a no-op does not count, explain shows the use, and a remote backend refuses the policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from switchman.action_sets.event_changes import changes_since
from switchman.action_sets.policy import put_policy
from switchman.action_sets.schemas import ActionSetPolicySchema
from switchman.auth.principal import Principal, PrincipalKind
from switchman.db.engine import Database
from switchman.errors import BadDataError
from switchman.flags.factory import create_flag_backend
from switchman.wakeup import Wakeup
from switchman.worker.loop import SignalWorker
from tests.conftest import assert_error, make_settings
from tests.worker.conftest import Scenario, build_scenario, drain, toggle

ACTIONS = "/api/admin/projects/default/actions"
FEATURES = "/api/admin/projects/default/features"


async def production_on(client: httpx.AsyncClient, flag: str) -> bool:
    feature = (await client.get(f"{FEATURES}/{flag}")).json()
    return bool(next(env["enabled"] for env in feature["environments"] if env["name"] == "production"))


async def events_of(client: httpx.AsyncClient, set_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await client.get(f"{ACTIONS}/{set_id}/events")).json()["actionSetEvents"]
    return found[::-1]  # oldest first


async def budgeted_set(client: httpx.AsyncClient, scenario: Scenario, budget: int, action: str) -> int:
    set_id = await scenario.add_set(
        client,
        [toggle(action, scenario.feature, 1), toggle(action, scenario.other_feature, 2)],
    )
    answer = await client.put(f"{ACTIONS}/{set_id}/policy", json={"maxChangesPerHour": budget})
    assert answer.status_code == 200, answer.text
    assert answer.json()["maxChangesPerHour"] == budget
    return set_id


async def test_an_action_beyond_the_budget_fails_saying_so(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await budgeted_set(client, scenario, 1, "TOGGLE_FEATURE_ON")
    await scenario.send(client, {"n": 1})
    await drain(worker)
    assert await production_on(client, scenario.feature) is True  # the first change fits the budget
    assert await production_on(client, scenario.other_feature) is False  # the second does not
    (event,) = await events_of(client, set_id)
    assert event["state"] == "failed"
    first, second = event["actionSet"]["actions"]
    assert first["state"] == "success"
    assert second["state"] == "failed"
    assert second["details"] == (
        "change budget exhausted: this action set changed 1 flag state(s) in the last hour and its policy "
        "allows 1; this action would change 1 more"
    )
    explained = await client.post(f"{ACTIONS}/{set_id}/explain", json={"payload": {"n": 2}})
    assert explained.status_code == 200, explained.text
    assert explained.json()["policy"]["budget"] == (
        "1 of 1 flag changes used in the last hour: an action that changes a flag would fail"
    )


async def test_changes_that_change_nothing_do_not_spend_the_budget(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await budgeted_set(client, scenario, 2, "TOGGLE_FEATURE_ON")
    for n in range(3):  # the first run changes both flags; the next two find them on already
        await scenario.send(client, {"n": n})
    await drain(worker)
    assert [e["state"] for e in await events_of(client, set_id)] == ["success"] * 3
    assert await production_on(client, scenario.other_feature) is True
    # Turned off by hand, the next run would need a third change within the hour: it fails.
    await client.post(f"{FEATURES}/{scenario.feature}/environments/production/off")
    await scenario.send(client, {"n": 3})
    await drain(worker)
    assert (await events_of(client, set_id))[-1]["state"] == "failed"
    assert await production_on(client, scenario.feature) is False


async def test_several_signals_in_one_batch_share_the_budget(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    """Two sets would flip the flags back and forth; the budget stops the set after two changes even when
    every signal is in the same claimed batch."""
    on = await budgeted_set(client, scenario, 2, "TOGGLE_FEATURE_ON")
    off = await scenario.add_set(
        client,
        [
            toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1),
            toggle("TOGGLE_FEATURE_OFF", scenario.other_feature, 2),
        ],
    )
    for n in range(4):
        await scenario.send(client, {"n": n})
    await drain(worker)
    states = [e["state"] for e in await events_of(client, on)]
    assert states == ["success", "failed", "failed", "failed"]
    assert [e["state"] for e in await events_of(client, off)] == ["success"] * 4


async def test_explain_without_a_budget_says_nothing_of_one(
    client: httpx.AsyncClient, scenario: Scenario
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    await client.put(f"{ACTIONS}/{set_id}/policy", json={"cooldownSeconds": 60})
    explained = (await client.post(f"{ACTIONS}/{set_id}/explain", json={"payload": {}})).json()
    assert explained["policy"]["budget"] is None


@pytest.mark.parametrize(
    "field",
    [{"maxChangesPerHour": 5}, {"perAlert": True, "restoreOnResolve": True}, {"revertAfterSeconds": 60}],
)
async def test_a_remote_backend_refuses_what_needs_the_flag_changes(
    client: httpx.AsyncClient, scenario: Scenario, db: Database, field: dict[str, Any]
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    admin = Principal(PrincipalKind.ADMIN_TOKEN, -1, "admin", frozenset({"ADMIN"}))
    with pytest.raises(BadDataError) as refused:
        async with db.transaction() as conn:
            await put_policy(
                conn,
                project="default",
                action_set_id=set_id,
                body=ActionSetPolicySchema.model_validate(field),
                principal=admin,
                embedded=False,
            )
    assert "a remote Unleash does not tell which flags" in str(refused.value.details)


@pytest.mark.parametrize("budget", [0, -1, "5", 100_001])
async def test_a_budget_must_be_a_positive_integer(
    client: httpx.AsyncClient, scenario: Scenario, budget: Any
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    answer = await client.put(f"{ACTIONS}/{set_id}/policy", json={"maxChangesPerHour": budget})
    assert answer.status_code == 400, answer.text
    assert answer.json()["name"] == "BadDataError"


BUDGET = "/api/admin/projects/default/action-budget"


async def test_a_project_budget_is_shared_by_its_sets(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    """Two sets, no policy of their own, one project budget of 1: the first change fits, the second set's
    action fails naming the project's budget; the resource is audited and removable."""
    assert_error(await client.get(BUDGET), 404, "NotFoundError")
    answer = await client.put(BUDGET, json={"maxChangesPerHour": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["project"] == "default" and answer.json()["maxChangesPerHour"] == 1
    first = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    second = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.other_feature, 1)])
    try:
        await scenario.send(client, {"n": 1})
        await drain(worker)
        assert [e["state"] for e in await events_of(client, first)] == ["success"]
        (failed,) = await events_of(client, second)
        assert failed["state"] == "failed"
        assert failed["actionSet"]["actions"][0]["details"] == (
            "change budget exhausted: project default's action sets changed 1 flag state(s) in the last hour "
            "and its project budget allows 1; this action would change 1 more"
        )
        explained = (await client.post(f"{ACTIONS}/{second}/explain", json={"payload": {}})).json()
        assert explained["policy"]["budget"] == (
            "project default: 1 of 1 flag changes used in the last hour: an action that changes a flag would fail"
        )
        audit = (await client.get("/api/admin/events")).json()["events"]
        assert any(e["type"] == "project-action-budget-updated" for e in audit)
    finally:
        assert (await client.delete(BUDGET)).status_code == 200
    assert_error(await client.delete(BUDGET), 404, "NotFoundError")
    assert (await client.post(f"{ACTIONS}/{second}/explain", json={"payload": {}})).json().get(
        "policy"
    ) is None


@pytest.mark.parametrize("budget", [0, "3", None])
async def test_a_project_budget_must_be_a_positive_integer(client: httpx.AsyncClient, budget: Any) -> None:
    assert_error(await client.put(BUDGET, json={"maxChangesPerHour": budget}), 400, "BadDataError")
    assert_error(await client.put(BUDGET, json={}), 400, "BadDataError")
    assert_error(
        await client.put("/api/admin/projects/nowhere/action-budget", json={"maxChangesPerHour": 3}),
        404,
        "NotFoundError",
    )


async def test_several_workers_cannot_spend_one_budget_twice(
    client: httpx.AsyncClient, scenario: Scenario, db: Database, db_url: str
) -> None:
    """Two endpoints, each with two sets flipping its own flag on and off (two changes per signal); four
    workers take one signal at a time, so two of them often run on different flags at once. The project's
    budget of 9 and the first pair's budget of 3 hold exactly however the signals are interleaved."""
    other = await build_scenario(client)
    pairs = []
    for each in (scenario, other):
        on = await each.add_set(client, [toggle("TOGGLE_FEATURE_ON", each.feature, 1)])
        off = await each.add_set(client, [toggle("TOGGLE_FEATURE_OFF", each.feature, 1)])
        pairs.append((on, off))
    assert (
        await client.put(f"{ACTIONS}/{pairs[0][0]}/policy", json={"maxChangesPerHour": 3})
    ).status_code == 200
    assert (await client.put(BUDGET, json={"maxChangesPerHour": 9})).status_code == 200
    try:
        for n in range(30):
            await scenario.send(client, {"n": n})
            await other.send(client, {"n": n})
        settings = make_settings(db_url, worker_batch_size=1, worker_max_batch_size=1)
        databases = [Database(settings.async_database_url, pool_size=2) for _ in range(4)]
        workers = [
            SignalWorker(
                settings=settings, db=own, wakeup=Wakeup(), backend=create_flag_backend(settings, own)
            )
            for own in databases
        ]
        try:
            handled = await asyncio.gather(*(drain(w) for w in workers))
        finally:
            for own in databases:
                await own.dispose()
        assert sum(handled) == 60
        async with db.read() as conn:
            since = datetime.now(UTC) - timedelta(hours=1)
            assert await changes_since(conn, since=since, project="default") == 9
            assert await changes_since(conn, since=since, action_set_id=pairs[0][0]) <= 3
    finally:
        await client.delete(BUDGET)
