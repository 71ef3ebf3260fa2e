"""Action set policies (ADR 0023) through HTTP and the real worker, on both databases: the resource, the
flap guard (cooldown), windows, per-alert counting, shadow mode, explain, the remote path, and several
workers deciding from one state."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from fastapi import FastAPI

from switchman.db.engine import Database
from switchman.flags.factory import create_flag_backend
from switchman.wakeup import Wakeup
from switchman.worker.loop import SignalWorker
from tests.conftest import REPO_ROOT, assert_error, make_settings
from tests.worker.conftest import Scenario, drain, remote_worker, toggle

ACTIONS = "/api/admin/projects/default/actions"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "senders"
FIRING = {"state": {"operator": "IN", "values": ["firing"]}}


async def put_policy(client: httpx.AsyncClient, set_id: int, **policy: Any) -> dict[str, Any]:
    answer = await client.put(f"{ACTIONS}/{set_id}/policy", json=policy)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def decisions(client: httpx.AsyncClient, set_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (
        await client.get(f"{ACTIONS}/{set_id}/decisions", params={"limit": "1000"})
    ).json()["decisions"]
    return found[::-1]  # oldest first


async def production_on(client: httpx.AsyncClient, flag: str) -> bool:
    feature = (await client.get(f"/api/admin/projects/default/features/{flag}")).json()
    return bool(next(env["enabled"] for env in feature["environments"] if env["name"] == "production"))


async def test_the_policy_resource(client: httpx.AsyncClient, scenario: Scenario) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)])
    path = f"{ACTIONS}/{set_id}/policy"
    assert_error(await client.get(path), 404, "NotFoundError")
    assert_error(await client.delete(path), 404, "NotFoundError")
    for bad in (
        {"windowCount": 3},  # without windowSeconds
        {"alertKey": "labels.alertname"},  # without perAlert
        {"cooldownSeconds": 0},
        {"windowCount": 1, "windowSeconds": 60},
        {"shadow": "yes"},
        {"cooldown": 60},  # unknown field
    ):
        assert_error(await client.put(path, json=bad), 400, "BadDataError")
    stored = await put_policy(client, set_id, cooldownSeconds=600, perAlert=True, alertKey="labels.alertname")
    assert stored["actionSetId"] == set_id
    assert (stored["cooldownSeconds"], stored["perAlert"], stored["alertKey"]) == (
        600,
        True,
        "labels.alertname",
    )
    assert stored["shadow"] is False and stored["windowCount"] is None
    assert (await client.get(path)).json() == stored
    assert (await client.delete(path)).status_code == 200
    assert_error(await client.get(path), 404, "NotFoundError")
    assert_error(await client.put(f"{ACTIONS}/999999/policy", json={}), 404, "NotFoundError")
    audit = (await client.get("/api/admin/events")).json()["events"]
    assert {"action-set-policy-updated", "action-set-policy-deleted"} <= {e["type"] for e in audit}
    # Unleash's own action set schema is untouched by a policy.
    await put_policy(client, set_id, shadow=True)
    assert "policy" not in (await client.get(f"{ACTIONS}/{set_id}")).json()


async def test_a_flapping_alertmanager_alert_the_readme_example(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    """Fires → off; resolves → on; fires again → off; resolves again within the cooldown → held back, so
    the flag stays off (the safe state); a resolution after the cooldown turns it on."""
    await client.put(
        f"/api/admin/signal-endpoints/{scenario.endpoint_id}/format", json={"format": "alertmanager"}
    )
    await client.post(f"/api/admin/projects/default/features/{scenario.feature}/environments/production/on")
    off = await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)],
        filters={"@switchman.status": {"operator": "IN", "values": ["firing"]}},
    )
    on = await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)],
        filters={"@switchman.status": {"operator": "IN", "values": ["resolved"]}},
    )
    await put_policy(client, on, cooldownSeconds=2, perAlert=True)
    firing = json.loads((FIXTURES / "alertmanager-firing.json").read_text())
    resolved = json.loads((FIXTURES / "alertmanager-resolved.json").read_text())
    assert firing["groupKey"] == resolved["groupKey"]  # one alert identity

    states = []
    for payload in (firing, resolved, firing, resolved):
        await scenario.send(client, payload)
        await drain(worker)
        states.append(await production_on(client, scenario.feature))
    assert states == [False, True, False, False]

    turned_on = await decisions(client, on)
    assert [d["outcome"] for d in turned_on] == ["not-matched", "matched", "not-matched", "suppressed"]
    assert turned_on[1]["alertId"] == firing["groupKey"]
    assert turned_on[3]["policy"].startswith("cooldown: the set ran for a signal of ")
    assert turned_on[3]["eventId"] is None
    assert [d["outcome"] for d in await decisions(client, off)] == [
        "matched", "not-matched", "matched", "not-matched",
    ]  # fmt: skip

    last = turned_on[3]["signalId"]
    explained = (await client.post(f"{ACTIONS}/{on}/explain", json={"signalId": last})).json()
    assert explained["matched"] is True
    assert explained["policy"]["verdict"] == "suppressed"
    assert explained["policy"]["reason"].startswith("cooldown")

    await asyncio.sleep(2.1)  # the cooldown is over
    await scenario.send(client, resolved)
    await drain(worker)
    assert await production_on(client, scenario.feature) is True
    assert (await decisions(client, on))[-1]["outcome"] == "matched"


async def test_a_window_runs_once_n_matches_arrived_per_alert(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)], filters=FIRING
    )
    await put_policy(client, set_id, windowCount=3, windowSeconds=600, perAlert=True, alertKey="alert")
    await client.post(f"/api/admin/projects/default/features/{scenario.feature}/environments/production/on")
    for alert in ("a", "b", "a", "b", "a"):
        await scenario.send(client, {"state": "firing", "alert": alert})
    await drain(worker)
    found = await decisions(client, set_id)
    assert [(d["alertId"], d["outcome"]) for d in found] == [
        ("a", "suppressed"), ("b", "suppressed"), ("a", "suppressed"), ("b", "suppressed"), ("a", "matched"),
    ]  # fmt: skip
    assert found[2]["policy"] == "window: 2 of 3 matching signals within 600 s"
    assert await production_on(client, scenario.feature) is False
    events = (await client.get(f"{ACTIONS}/{set_id}/events")).json()["actionSetEvents"]
    assert len(events) == 1 and events[0]["id"] == found[4]["eventId"]


async def test_shadow_mode_decides_and_traces_but_changes_nothing(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)], filters=FIRING
    )
    await put_policy(client, set_id, shadow=True)
    await scenario.send(client, {"state": "firing"})
    await scenario.send(client, {"state": "resolved"})
    await drain(worker)
    assert await production_on(client, scenario.feature) is False
    assert (await client.get(f"{ACTIONS}/{set_id}/events")).json()["actionSetEvents"] == []
    found = await decisions(client, set_id)
    assert [d["outcome"] for d in found] == ["shadow", "not-matched"]
    assert "no flag was changed" in found[0]["policy"]
    explained = (
        await client.post(f"{ACTIONS}/{set_id}/explain", json={"payload": {"state": "firing"}})
    ).json()
    assert explained["policy"]["verdict"] == "shadow"
    # Without the policy the set runs again, as Unleash's.
    await client.delete(f"{ACTIONS}/{set_id}/policy")
    await scenario.send(client, {"state": "firing"})
    await drain(worker)
    assert await production_on(client, scenario.feature) is True


async def test_remote_runs_follow_the_policy(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario
) -> None:
    calls: list[str] = []
    set_id = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)], filters=FIRING
    )
    await put_policy(client, set_id, cooldownSeconds=600)
    for _ in range(3):
        await scenario.send(client, {"state": "firing"})
    async with remote_worker(app, calls) as worker:
        await drain(worker)
    assert len(calls) == 1
    found = await decisions(client, set_id)
    assert [d["outcome"] for d in found] == ["matched", "suppressed", "suppressed"]
    assert found[0]["eventId"] is not None


async def test_several_workers_let_one_run_through_a_cooldown(
    client: httpx.AsyncClient, scenario: Scenario, db: Database, db_url: str
) -> None:
    set_id = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)], filters=FIRING
    )
    await put_policy(client, set_id, cooldownSeconds=3600)
    for n in range(60):
        await scenario.send(client, {"state": "firing", "n": n})
    settings = make_settings(db_url, worker_batch_size=3, worker_max_batch_size=3)
    databases = [Database(settings.async_database_url, pool_size=2) for _ in range(3)]
    workers = [
        SignalWorker(settings=settings, db=own, wakeup=Wakeup(), backend=create_flag_backend(settings, own))
        for own in databases
    ]
    try:
        handled = await asyncio.gather(*(drain(w) for w in workers))
    finally:
        for own in databases:
            await own.dispose()
    assert sum(handled) == 60
    found = await decisions(client, set_id)
    assert len(found) == 60
    assert [d["outcome"] for d in found].count("matched") == 1  # every other one held back
    assert len((await client.get(f"{ACTIONS}/{set_id}/events")).json()["actionSetEvents"]) == 1


async def many_workers(db_url: str, count: int = 3) -> tuple[list[SignalWorker], list[Database]]:
    settings = make_settings(db_url, worker_batch_size=2, worker_max_batch_size=2)
    databases = [Database(settings.async_database_url, pool_size=2) for _ in range(count)]
    workers = [
        SignalWorker(settings=settings, db=own, wakeup=Wakeup(), backend=create_flag_backend(settings, own))
        for own in databases
    ]
    return workers, databases


async def drain_all(db_url: str) -> int:
    workers, databases = await many_workers(db_url)
    try:
        return sum(await asyncio.gather(*(drain(w) for w in workers)))
    finally:
        for own in databases:
            await own.dispose()


async def test_several_workers_let_one_run_through_a_window_and_cooldown(
    client: httpx.AsyncClient, scenario: Scenario, db_url: str
) -> None:
    set_id = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)], filters=FIRING
    )
    await put_policy(client, set_id, windowCount=5, windowSeconds=3600, cooldownSeconds=3600)
    for n in range(40):
        await scenario.send(client, {"state": "firing", "n": n})
    assert await drain_all(db_url) == 40
    found = await decisions(client, set_id)
    outcomes = [d["outcome"] for d in found]
    assert outcomes.count("matched") == 1 and outcomes.count("suppressed") == 39
    window_held = [d for d in found if d["policy"].startswith("window: ")]
    assert len(window_held) >= 4  # at least the first four (by decision) waited for the window


async def test_several_workers_restore_each_resolved_alert_once(
    client: httpx.AsyncClient, scenario: Scenario, db_url: str
) -> None:
    """Twenty alerts fire (one set, restore on resolve), then all resolve, each phase drained by three
    workers at once: twenty restores, one per alert's run, and the flag ends as it was."""
    await client.put(
        f"/api/admin/signal-endpoints/{scenario.endpoint_id}/format", json={"format": "alertmanager"}
    )
    firing = json.loads((FIXTURES / "alertmanager-firing.json").read_text())
    resolved = json.loads((FIXTURES / "alertmanager-resolved.json").read_text())
    await client.post(f"/api/admin/projects/default/features/{scenario.feature}/environments/production/on")
    set_id = await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)],
        filters={"@switchman.status": {"operator": "IN", "values": ["firing"]}},
    )
    await put_policy(client, set_id, perAlert=True, restoreOnResolve=True)
    for n in range(20):
        await scenario.send(client, {**firing, "groupKey": f"group-{n}"})
    assert await drain_all(db_url) == 20
    assert await production_on(client, scenario.feature) is False
    for n in range(20):
        await scenario.send(client, {**resolved, "groupKey": f"group-{n}"})
    assert await drain_all(db_url) == 20
    found = await decisions(client, set_id)
    restored = [d for d in found if d["outcome"] == "restored"]
    assert len(restored) == 20
    assert len({d["eventId"] for d in restored}) == 20  # each alert's own run, once
    audit = (await client.get("/api/admin/events", params={"limit": "1000"})).json()["events"]
    assert len([e for e in audit if e["type"] == "action-set-event-restored"]) == 20
    assert await production_on(client, scenario.feature) is True
