"""Backtest (issue 14, part 3): a saved or draft action set replayed over stored signals; nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from switchman.engine.backtest import BacktestSignal, PlannedAction, backtest
from switchman.engine.matching import compile_filters
from switchman.engine.payload import flatten_payload
from switchman.engine.policy import Policy, Verdict
from tests.conftest import assert_error
from tests.factories import endpoint_with_token, make_flag, make_service_account, send_signal

ACTIONS = "/api/admin/projects/default/actions"


def _action(action: str, flag: str, order: int) -> dict[str, Any]:
    params = {"project": "default", "environment": "production", "featureName": flag}
    return {"action": action, "sortOrder": order, "executionParams": params}


def test_the_pure_replay_counts_changes_and_first_failures() -> None:
    compiled = compile_filters(
        {
            "status": {"operator": "IN", "values": ["firing"]},
            "sev": {"operator": "IN", "values": ["critical"]},
        }
    )
    signals = [
        BacktestSignal(n, f"t{n}", flatten_payload(payload))
        for n, payload in enumerate(
            [
                {"status": "firing", "sev": "critical"},
                {"status": "resolved", "sev": "critical"},
                {"status": "firing", "sev": "warning"},
                {"status": "firing", "sev": "critical"},
            ]
        )
    ]
    off = PlannedAction("TOGGLE_FEATURE_OFF", 1, {"featureName": "f", "environment": "production"})
    result = backtest(compiled, [off], signals)
    assert [signal.id for signal, _ in result.runs] == [0, 3]
    assert dict(result.not_matched) == {"status": 1, "sev": 1}
    [flag] = result.flags.values()
    assert (flag.target, flag.final_state, flag.changes) == ("f", "off", 1)  # off twice is one change
    # The service streams the signals (a generator: one flattened payload alive at a time); same answer.
    streamed = backtest(compiled, [off], (signal for signal in signals))
    assert (streamed.considered, streamed.matched) == (4, 2) == (result.considered, result.matched)
    assert streamed.runs == result.runs and streamed.not_matched == result.not_matched


async def test_backtest_a_saved_and_a_draft_set(client: httpx.AsyncClient) -> None:
    endpoint, token = await endpoint_with_token(client)
    flag = await make_flag(client)
    actor = await make_service_account(client, role=1)
    for status in ("firing", "resolved", "firing", "firing", "resolved"):
        await send_signal(client, endpoint["name"], token, {"status": status, "service": "checkout"})
    body = {
        "name": "off while firing",
        "actorId": actor["id"],
        "match": {
            "source": "signal-endpoint",
            "sourceId": endpoint["id"],
            "payload": {"status": {"operator": "IN", "values": ["firing"]}},
        },
        "actions": [_action("TOGGLE_FEATURE_OFF", flag, 1)],
    }
    created = (await client.post(ACTIONS, json=body)).json()
    replay = await client.post(f"{ACTIONS}/{created['id']}/backtest", json={"limit": 100})
    assert replay.status_code == 200, replay.text
    answer = replay.json()
    assert answer["signals"] == 5 and answer["matched"] == 3
    assert answer["notMatched"] == [{"parameter": "status", "signals": 2}]
    assert answer["flags"] == [
        {"target": flag, "environment": "production", "changes": 1, "finalState": "off"}
    ]
    assert [run["actions"][0]["action"] for run in answer["runs"]] == ["TOGGLE_FEATURE_OFF"] * 3
    newest = await client.post(f"{ACTIONS}/{created['id']}/backtest", json={"limit": 2})
    assert newest.json()["signals"] == 2  # the newest two: firing, resolved
    assert newest.json()["matched"] == 1

    # A draft pairing off and on: what would the flag have been left in?
    draft = {
        **body,
        "name": "draft",
        "match": {**body["match"], "payload": {"service": {"operator": "IN", "values": ["checkout"]}}},
        "actions": [_action("TOGGLE_FEATURE_OFF", flag, 1), _action("TOGGLE_FEATURE_ON", flag, 2)],
    }
    tried = await client.post(f"{ACTIONS}/backtest", json={"actionSet": draft})
    assert tried.status_code == 200, tried.text
    assert tried.json()["matched"] == 5
    assert tried.json()["flags"][0]["finalState"] == "on"
    assert tried.json()["flags"][0]["changes"] == 10
    assert (await client.get(ACTIONS)).json()["actions"][0]["name"] == "off while firing"  # nothing stored
    feature = (await client.get(f"/api/admin/projects/default/features/{flag}")).json()
    assert all(env["enabled"] is False for env in feature["environments"])  # nothing changed

    bad = {**draft, "match": {**draft["match"], "payload": {"x": {"operator": "NUM_GT", "value": "many"}}}}
    assert_error(await client.post(f"{ACTIONS}/backtest", json={"actionSet": bad}), 400, "BadDataError")
    assert_error(await client.post(f"{ACTIONS}/backtest", json={}), 400, "BadDataError")
    assert_error(await client.post(f"{ACTIONS}/999999/backtest", json={}), 404, "NotFoundError")
    assert_error(await client.post(f"{ACTIONS}/{created['id']}/backtest", json={"limit": 0}), 400)


def test_the_pure_replay_follows_a_policy_from_an_empty_state() -> None:
    compiled = compile_filters({"status": {"operator": "IN", "values": ["firing"]}})
    start = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    signals = [
        BacktestSignal(n, f"t{n}", flatten_payload({"status": "firing", "alert": alert}),
                       start + timedelta(seconds=seconds))
        for n, (alert, seconds) in enumerate([("a", 0), ("a", 30), ("b", 40), ("a", 700)])
    ]  # fmt: skip
    off = PlannedAction("TOGGLE_FEATURE_OFF", 1, {"featureName": "f", "environment": "production"})
    per_alert = Policy(cooldown_seconds=600, per_alert=True, alert_key="alert")
    result = backtest(compiled, [off], signals, per_alert)
    assert result.matched == 4
    assert [signal.id for signal, _ in result.runs] == [0, 2, 3]
    [(held, verdict, reason, alert)] = result.held_back
    assert (held.id, verdict, alert) == (1, Verdict.SUPPRESSED, "a")
    assert reason.startswith("cooldown")
    shadow = backtest(compiled, [off], signals, Policy(shadow=True))
    assert shadow.runs == [] and shadow.flags == {}
    assert [v for _, v, _, _ in shadow.held_back] == [Verdict.SHADOW] * 4


async def test_backtest_replays_the_saved_policy_or_the_one_sent(client: httpx.AsyncClient) -> None:
    endpoint, token = await endpoint_with_token(client)
    flag = await make_flag(client)
    actor = await make_service_account(client, role=1)
    for _ in range(3):
        await send_signal(client, endpoint["name"], token, {"status": "firing"})
    body = {
        "name": "off while firing",
        "actorId": actor["id"],
        "match": {
            "source": "signal-endpoint",
            "sourceId": endpoint["id"],
            "payload": {"status": {"operator": "IN", "values": ["firing"]}},
        },
        "actions": [_action("TOGGLE_FEATURE_OFF", flag, 1)],
    }
    created = (await client.post(ACTIONS, json=body)).json()
    await client.put(f"{ACTIONS}/{created['id']}/policy", json={"cooldownSeconds": 3600})
    saved = (await client.post(f"{ACTIONS}/{created['id']}/backtest", json={})).json()
    assert saved["matched"] == 3 and len(saved["runs"]) == 1
    assert [h["verdict"] for h in saved["heldBack"]] == ["suppressed", "suppressed"]
    assert saved["heldBack"][0]["reason"].startswith("cooldown")
    tried = (
        await client.post(
            f"{ACTIONS}/{created['id']}/backtest", json={"policy": {"windowCount": 3, "windowSeconds": 60}}
        )
    ).json()
    assert [r["signalId"] for r in tried["runs"]] == [saved["heldBack"][1]["signalId"]]  # the third
    draft = (
        await client.post(f"{ACTIONS}/backtest", json={"actionSet": body, "policy": {"shadow": True}})
    ).json()
    assert draft["runs"] == [] and [h["verdict"] for h in draft["heldBack"]] == ["shadow"] * 3
    unpoliced = (await client.post(f"{ACTIONS}/backtest", json={"actionSet": body})).json()
    assert len(unpoliced["runs"]) == 3 and unpoliced["heldBack"] == []
    assert_error(
        await client.post(f"{ACTIONS}/backtest", json={"actionSet": body, "policy": {"windowCount": 3}}),
        400,
        "BadDataError",
    )
