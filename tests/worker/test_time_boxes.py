"""Time boxes (ADR 0025) through HTTP and the real worker, on both databases: a run is put back once its box
ends, matching signals renew it, the revert is traced and audited, done once by many sweeping workers, by a
worker that did not open it, and by the worker loop itself; a changed flag is left alone."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import httpx

from switchman.db.engine import Database
from switchman.flags.factory import create_flag_backend
from switchman.wakeup import Wakeup
from switchman.worker.loop import SignalWorker
from switchman.worker.time_boxes import TimeBoxSweep
from tests.conftest import REPO_ROOT, assert_error, make_settings
from tests.worker.conftest import Scenario, drain, toggle

ACTIONS = "/api/admin/projects/default/actions"
FEATURES = "/api/admin/projects/default/features"
FIRING = {"state": {"operator": "IN", "values": ["firing"]}}
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "senders"


async def production_on(client: httpx.AsyncClient, flag: str) -> bool:
    feature = (await client.get(f"{FEATURES}/{flag}")).json()
    return bool(next(env["enabled"] for env in feature["environments"] if env["name"] == "production"))


async def switch(client: httpx.AsyncClient, flag: str, on: bool) -> None:
    answer = await client.post(f"{FEATURES}/{flag}/environments/production/{'on' if on else 'off'}")
    assert answer.status_code == 200, answer.text


async def boxed_kill_switch(client: httpx.AsyncClient, scenario: Scenario, **policy: Any) -> int:
    """The flag starts on; a firing signal turns it off for `revertAfterSeconds` (600 by default)."""
    await switch(client, scenario.feature, True)
    set_id = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)], filters=FIRING
    )
    answer = await client.put(f"{ACTIONS}/{set_id}/policy", json={"revertAfterSeconds": 600, **policy})
    assert answer.status_code == 200, answer.text
    assert answer.json()["revertAfterSeconds"] == policy.get("revertAfterSeconds", 600)
    return set_id


async def time_box(client: httpx.AsyncClient, set_id: int, payload: dict[str, Any] | None = None) -> str:
    explained = await client.post(
        f"{ACTIONS}/{set_id}/explain", json={"payload": payload or {"state": "firing"}}
    )
    assert explained.status_code == 200, explained.text
    text: str = explained.json()["policy"]["timeBox"]
    return text


def due_of(text: str) -> datetime:
    """The due time in explain's `timeBox` text ("event N is put back at <iso> unless …"), which shows
    milliseconds: the end of that millisecond."""
    shown = datetime.fromisoformat(text.split(" is put back at ")[1].split(" ")[0].replace("Z", "+00:00"))
    return shown + timedelta(milliseconds=1)


def sweep_of(worker: SignalWorker) -> TimeBoxSweep:
    assert worker.time_boxes is not None  # the embedded store sweeps
    return worker.time_boxes


async def decisions(client: httpx.AsyncClient, set_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await client.get(f"{ACTIONS}/{set_id}/decisions")).json()["decisions"]
    return found  # newest first


async def test_a_run_is_put_back_when_its_box_ends(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await boxed_kill_switch(client, scenario)
    signal_id = await scenario.send(client, {"state": "firing"})
    await drain(worker)
    assert await production_on(client, scenario.feature) is False
    text = await time_box(client, set_id)
    (event,) = (await client.get(f"{ACTIONS}/{set_id}/events")).json()["actionSetEvents"]
    assert text.startswith(f"event {event['id']} is put back at ")
    assert text.endswith(f"(last renewed by signal {signal_id})")
    due = due_of(text)

    assert await sweep_of(worker).sweep(now=due - timedelta(seconds=1)) == 0  # not yet
    assert await production_on(client, scenario.feature) is False
    assert await sweep_of(worker).sweep(now=due) == 1
    assert await production_on(client, scenario.feature) is True
    assert await sweep_of(worker).sweep(now=due + timedelta(hours=1)) == 0  # once

    newest = (await decisions(client, set_id))[0]
    assert newest["outcome"] == "reverted"
    assert newest["signalId"] == signal_id and newest["eventId"] == event["id"]
    assert newest["policy"].startswith(f"time box: no matching signal for 600 s after signal {signal_id}; ")
    assert newest["policy"].endswith(
        f"restored event {event['id']}: {scenario.feature} in production back on"
    )
    trace = (await client.get(f"/api/admin/signals/{signal_id}/trace")).json()
    assert [d["outcome"] for d in trace["decisions"]] == ["matched", "reverted"]
    audit = (await client.get("/api/admin/events")).json()["events"]
    assert any(
        e["type"] == "action-set-event-reverted" and e["data"]["eventId"] == event["id"] for e in audit
    )
    refused = assert_error(await client.post(f"{ACTIONS}/{set_id}/events/{event['id']}/undo"), 409)
    assert "(time box)" in refused["message"]
    assert (await time_box(client, set_id)).startswith("no run open")


async def test_matching_signals_renew_the_box_even_when_held_back(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await boxed_kill_switch(client, scenario, cooldownSeconds=3600)
    await scenario.send(client, {"state": "firing"})
    await drain(worker)
    first_due = due_of(await time_box(client, set_id))
    await asyncio.sleep(1.1)  # a later arrival: the box must move
    renewing = await scenario.send(client, {"state": "firing"})
    await drain(worker)
    assert [d["outcome"] for d in await decisions(client, set_id)] == ["suppressed", "matched"]
    text = await time_box(client, set_id)
    assert text.endswith(f"(last renewed by signal {renewing})")
    assert due_of(text) - first_due >= timedelta(seconds=1)

    assert await sweep_of(worker).sweep(now=first_due) == 0  # renewed: not due at the first end
    assert await production_on(client, scenario.feature) is False
    assert await sweep_of(worker).sweep(now=due_of(text)) == 1
    assert await production_on(client, scenario.feature) is True
    assert (await decisions(client, set_id))[0]["signalId"] == renewing


async def test_a_flag_changed_in_between_is_left_as_it_is(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await boxed_kill_switch(client, scenario)
    await scenario.send(client, {"state": "firing"})
    await drain(worker)
    due = due_of(await time_box(client, set_id))
    await switch(client, scenario.feature, True)
    await switch(client, scenario.feature, False)  # someone decided it stays off
    assert await sweep_of(worker).sweep(now=due) == 1
    assert await production_on(client, scenario.feature) is False
    policy = (await decisions(client, set_id))[0]["policy"]
    assert "skipped: " in policy and "changed since: turned off by " in policy


async def test_a_resolution_closes_the_box(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    """With restore on resolve as well, whichever comes first puts the run back; the other finds it closed."""
    await client.put(
        f"/api/admin/signal-endpoints/{scenario.endpoint_id}/format", json={"format": "alertmanager"}
    )
    firing = json.loads((FIXTURES / "alertmanager-firing.json").read_text())
    resolved = json.loads((FIXTURES / "alertmanager-resolved.json").read_text())
    await switch(client, scenario.feature, True)
    set_id = await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)],
        filters={"@switchman.status": {"operator": "IN", "values": ["firing"]}},
    )
    policy = {"perAlert": True, "restoreOnResolve": True, "revertAfterSeconds": 600}
    assert (await client.put(f"{ACTIONS}/{set_id}/policy", json=policy)).status_code == 200
    await scenario.send(client, firing)
    await drain(worker)
    due = due_of(await time_box(client, set_id, firing))
    await scenario.send(client, resolved)
    await drain(worker)
    assert await production_on(client, scenario.feature) is True
    assert (await time_box(client, set_id, firing)).startswith("no run open")
    assert await sweep_of(worker).sweep(now=due) == 0
    assert [d["outcome"] for d in await decisions(client, set_id)] == ["restored", "matched"]


async def test_editing_the_policy_keeps_the_open_box(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await boxed_kill_switch(client, scenario)
    await scenario.send(client, {"state": "firing"})
    await drain(worker)
    before = await time_box(client, set_id)
    await client.put(f"{ACTIONS}/{set_id}/policy", json={"revertAfterSeconds": 600, "cooldownSeconds": 60})
    assert await time_box(client, set_id) == before  # a new cooldown does not strand the flag
    await client.put(f"{ACTIONS}/{set_id}/policy", json={"cooldownSeconds": 60})
    assert await sweep_of(worker).sweep(now=due_of(before)) == 0  # the time box was removed: nothing due
    assert await production_on(client, scenario.feature) is False


async def test_many_workers_revert_each_box_once(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, db_url: str
) -> None:
    """Thirty alerts, thirty boxes, three workers that did not open them (a restart) sweeping at once."""
    await switch(client, scenario.feature, True)
    set_id = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)], filters=FIRING
    )
    policy = {"revertAfterSeconds": 600, "perAlert": True, "alertKey": "alert"}
    assert (await client.put(f"{ACTIONS}/{set_id}/policy", json=policy)).status_code == 200
    for n in range(30):
        await scenario.send(client, {"state": "firing", "alert": f"a{n}"})
    await drain(worker)
    latest = max(
        [due_of(await time_box(client, set_id, {"state": "firing", "alert": f"a{n}"})) for n in range(30)]
    )
    settings = make_settings(db_url)
    databases = [Database(settings.async_database_url, pool_size=2) for _ in range(3)]
    sweeps = [TimeBoxSweep(own, interval_seconds=1) for own in databases]
    try:
        reverted = await asyncio.gather(*(sweep.sweep(now=latest) for sweep in sweeps))
    finally:
        for own in databases:
            await own.dispose()
    assert sum(reverted) == 30
    found = await decisions(client, set_id)
    assert [d["outcome"] for d in found].count("reverted") == 30
    assert len({d["alertId"] for d in found if d["outcome"] == "reverted"}) == 30
    audit = (await client.get("/api/admin/events")).json()["events"]
    assert len([e for e in audit if e["type"] == "action-set-event-reverted"]) == 30
    assert await production_on(client, scenario.feature) is True  # the first run's box put it back


async def test_the_worker_loop_sweeps_on_its_own(
    client: httpx.AsyncClient, scenario: Scenario, db_url: str
) -> None:
    set_id = await boxed_kill_switch(client, scenario, revertAfterSeconds=1)
    settings = make_settings(db_url, worker_poll_interval_seconds=0.1)
    own = Database(settings.async_database_url, pool_size=2)
    backend = create_flag_backend(settings, own)
    worker = SignalWorker(settings=settings, db=own, wakeup=Wakeup(), backend=backend)
    task = asyncio.create_task(worker.run())
    try:
        await scenario.send(client, {"state": "firing"})
        outcomes: list[str] = []
        for _ in range(100):  # the run, then the revert about a second later
            await asyncio.sleep(0.1)
            outcomes = [d["outcome"] for d in await decisions(client, set_id)]
            if outcomes == ["reverted", "matched"]:
                break
        assert outcomes == ["reverted", "matched"]
        assert await production_on(client, scenario.feature) is True
    finally:
        worker.stop()
        await task
        await backend.close()
        await own.dispose()
