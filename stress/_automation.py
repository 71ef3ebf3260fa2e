"""Time boxes and restore on resolve under faults (ADR 0024, 0025): a second scenario run beside the main one.

Endpoint `stress-boxes` drives BOXES flags, each turned off by its own action set with a one-second time box
(`revertAfterSeconds: 1`); endpoint `stress-alerts` (Alertmanager's format) drives ALERTS flags, each turned
off by its own set while its alert fires and restored when it resolves (`perAlert`, `restoreOnResolve`).
Every flag starts on. A sender posts box signals at random and, per alert, firing and resolved in turn.

Checked after the run, once the boxes have had time to end (`check_automation`):
- every box flag is back on, no box is left due, and each box set's run was put back at most once, by the
  time box (one `reverted` trace entry per undo record, no event undone twice);
- each alert flag is on after a resolution and off after a firing (its last stored signal; one worker
  handles signals in id order), and every `restored` trace entry names a distinct run;
- every flag's audit trail alternates (no lost or doubled change).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from stress._checks import Outcome, engine_for
from stress._procs import ADMIN_SECRET
from stress._scenario import ENVIRONMENT, PROJECT
from switchman.db import tables as t

BOXES = 3
ALERTS = 3


@dataclass
class Automation:
    box_endpoint: str
    box_token: str
    alert_endpoint: str
    alert_token: str
    box_sets: dict[int, int] = field(default_factory=dict)  # index → action set id
    alert_sets: dict[int, int] = field(default_factory=dict)
    sent: int = 0


def box_flag(i: int) -> str:
    return f"stress-box-{i}"


def alert_flag(i: int) -> str:
    return f"stress-alert-{i}"


def _ok(response: httpx.Response) -> dict[str, object]:
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    body = response.json() if response.content else {}
    assert isinstance(body, dict)
    return body


async def create_automation(base_url: str) -> Automation:
    headers = {"Authorization": ADMIN_SECRET}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0) as admin:
        account = _ok(
            await admin.post(
                "/api/admin/service-account",
                json={"username": "stress-automation", "name": "Auto", "rootRole": 2},
            )
        )
        actor = int(str(account["id"]))
        endpoints: dict[str, tuple[int, str]] = {}
        for name in ("stress-boxes", "stress-alerts"):
            endpoint_id = int(
                str(_ok(await admin.post("/api/admin/signal-endpoints", json={"name": name}))["id"])
            )
            token = _ok(
                await admin.post(f"/api/admin/signal-endpoints/{endpoint_id}/tokens", json={"name": "t"})
            )
            endpoints[name] = (endpoint_id, str(token["token"]))
        _ok(await admin.put(f"/api/admin/signal-endpoints/{endpoints['stress-alerts'][0]}/format",
                            json={"format": "alertmanager"}))  # fmt: skip
        automation = Automation("stress-boxes", endpoints["stress-boxes"][1], "stress-alerts",
                                endpoints["stress-alerts"][1])  # fmt: skip

        async def kill_switch(name: str, flag: str, source: str, filters: Mapping[str, object]) -> int:
            _ok(await admin.post(f"/api/admin/projects/{PROJECT}/features", json={"name": flag}))
            _ok(
                await admin.post(
                    f"/api/admin/projects/{PROJECT}/features/{flag}/environments/{ENVIRONMENT}/on"
                )
            )
            created = _ok(
                await admin.post(
                    f"/api/admin/projects/{PROJECT}/actions",
                    json={
                        "name": name,
                        "actorId": actor,
                        "match": {"source": "signal-endpoint", "sourceId": endpoints[source][0], "payload": filters},
                        "actions": [{"action": "TOGGLE_FEATURE_OFF", "sortOrder": 1, "executionParams": {
                            "project": PROJECT, "environment": ENVIRONMENT, "featureName": flag}}],
                    },
                )
            )  # fmt: skip
            return int(str(created["id"]))

        for i in range(BOXES):
            set_id = await kill_switch(f"box-{i}", box_flag(i), "stress-boxes",
                                       {"box": {"operator": "IN", "values": [str(i)]}})  # fmt: skip
            _ok(await admin.put(f"/api/admin/projects/{PROJECT}/actions/{set_id}/policy",
                                json={"revertAfterSeconds": 1}))  # fmt: skip
            automation.box_sets[i] = set_id
        for i in range(ALERTS):
            filters = {
                "groupKey": {"operator": "IN", "values": [f"alert-{i}"]},
                "@switchman.status": {"operator": "IN", "values": ["firing"]},
            }
            set_id = await kill_switch(f"alert-{i}", alert_flag(i), "stress-alerts", filters)
            _ok(await admin.put(f"/api/admin/projects/{PROJECT}/actions/{set_id}/policy",
                                json={"perAlert": True, "restoreOnResolve": True}))  # fmt: skip
            automation.alert_sets[i] = set_id
        return automation


def alertmanager(i: int, status: str) -> dict[str, object]:
    return {
        "version": "4",
        "groupKey": f"alert-{i}",
        "status": status,
        "receiver": "switchman",
        "alerts": [{"status": status, "labels": {"alertname": f"alert-{i}"}, "fingerprint": f"f{i}"}],
    }


async def send_automation(
    base_url: str, automation: Automation, *, stop: asyncio.Event, rng: random.Random
) -> None:
    """Box signals at random and, per alert, firing and resolved in turn, about five a second in all, until
    `stop`; failed calls (the server is being killed) are not retried."""
    firing = dict.fromkeys(range(ALERTS), False)
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        while not stop.is_set():
            if rng.random() < 0.5:
                path, token = automation.box_endpoint, automation.box_token
                body: dict[str, object] = {"box": str(rng.randrange(BOXES))}
            else:
                i = rng.randrange(ALERTS)
                firing[i] = not firing[i]
                path, token = automation.alert_endpoint, automation.alert_token
                body = alertmanager(i, "firing" if firing[i] else "resolved")
            automation.sent += 1
            with contextlib.suppress(httpx.HTTPError):
                await client.post(f"/api/signal-endpoint/{path}", json=body,
                                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.uniform(0.1, 0.3))


async def _wait_for_boxes(engine: AsyncEngine, *, timeout: float) -> None:
    """Until no time box is open (no signal arrives any more, so each ends within a second and a sweep)."""
    state = t.action_set_policy_state
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async with engine.connect() as conn:
            open_boxes = (await conn.execute(
                sa.select(sa.func.count()).select_from(state).where(
                    state.c.open_event_id.is_not(None), state.c.revert_due_at.is_not(None))
            )).scalar_one()  # fmt: skip
        if open_boxes == 0:
            return
        await asyncio.sleep(0.5)


async def check_automation(database_url: str, automation: Automation, out: Outcome) -> dict[str, int]:
    """Add the broken promises to `out`; the figures for the report."""
    engine = engine_for(database_url)
    box_ids, alert_ids = set(automation.box_sets.values()), set(automation.alert_sets.values())
    try:
        await _wait_for_boxes(engine, timeout=30.0)
        async with engine.connect() as conn:
            decisions = (await conn.execute(
                sa.select(t.signal_decision.c.action_set_id, t.signal_decision.c.outcome, t.signal_decision.c.event_id)
                .where(t.signal_decision.c.action_set_id.in_(box_ids | alert_ids))
            )).all()  # fmt: skip
            undone = (await conn.execute(
                sa.select(t.action_set_event.c.action_set_id, t.action_set_event_undo.c.undone_by)
                .select_from(t.action_set_event_undo.join(
                    t.action_set_event, t.action_set_event.c.id == t.action_set_event_undo.c.event_id))
            )).all()  # fmt: skip
            left_due = (await conn.execute(
                sa.select(sa.func.count()).select_from(t.action_set_policy_state).where(
                    t.action_set_policy_state.c.open_event_id.is_not(None),
                    t.action_set_policy_state.c.revert_due_at < datetime.now(UTC) - timedelta(seconds=5))
            )).scalar_one()  # fmt: skip
            flags = {
                row.feature_name: bool(row.enabled)
                for row in await conn.execute(
                    sa.select(t.feature_environment.c.feature_name, t.feature_environment.c.enabled).where(
                        t.feature_environment.c.environment_name == ENVIRONMENT
                    )
                )
            }
            trail: dict[str, list[str]] = defaultdict(list)
            for row in await conn.execute(
                sa.select(t.event.c.feature_name, t.event.c.type)
                .where(t.event.c.environment == ENVIRONMENT,
                       t.event.c.type.in_(["feature-environment-enabled", "feature-environment-disabled"]))
                .order_by(t.event.c.id)
            ):  # fmt: skip
                trail[row.feature_name].append("on" if row.type.endswith("-enabled") else "off")
            last_alert_status: dict[str, str] = {}
            endpoint_id = (await conn.execute(
                sa.select(t.signal_endpoint.c.id).where(t.signal_endpoint.c.name == automation.alert_endpoint)
            )).scalar_one()  # fmt: skip
            for row in await conn.execute(
                sa.select(t.signal.c.payload)
                .where(t.signal.c.source_id == endpoint_id)
                .order_by(t.signal.c.id)
            ):
                payload = orjson.loads(row.payload)
                last_alert_status[str(payload["groupKey"])] = str(payload["status"])
    finally:
        await engine.dispose()

    reverted = [d for d in decisions if d.outcome == "reverted"]
    restored = [d for d in decisions if d.outcome == "restored" and d.event_id is not None]
    box_undos = [u for u in undone if u.action_set_id in box_ids]
    if left_due:
        out.problem(f"automation: {left_due} time box(es) due for more than 5 s were never reverted")
    if len(reverted) != len(box_undos) or any("(time box)" not in u.undone_by for u in box_undos):
        out.problem(
            f"automation: {len(reverted)} reverted trace entries for {len(box_undos)} time box undo records"
        )
    if len({d.event_id for d in restored}) != len(restored):
        out.problem("automation: a run was restored on resolve twice")
    for i in range(BOXES):
        if not flags.get(box_flag(i), False):
            out.problem(f"automation: {box_flag(i)} is still off after its time box ended")
    for i in range(ALERTS):
        status = last_alert_status.get(f"alert-{i}")
        if status is not None and flags.get(alert_flag(i), False) != (status == "resolved"):
            out.problem(f"automation: {alert_flag(i)} is {'on' if flags.get(alert_flag(i)) else 'off'} "
                        f"after its alert's last signal ({status})")  # fmt: skip
    for flag in [box_flag(i) for i in range(BOXES)] + [alert_flag(i) for i in range(ALERTS)]:
        changes = trail.get(flag, [])
        if any(a == b for a, b in itertools.pairwise(changes)):
            out.problem(f"automation: {flag}'s audit trail has two equal changes in a row: {changes}")
    return {
        "signals_sent": automation.sent,
        "time_box_reverts": len(reverted),
        "restores": len(restored),
    }
