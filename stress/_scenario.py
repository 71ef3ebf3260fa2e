"""The checkable scenario every stress script uses, set up through the real admin API.

Source `i` is a signal endpoint `stress-src-i` with one token; it owns flag `stress-flag-i` (project
`default`, environment `production`) and two action sets: `on-i` (payload `state` IN [on] →
TOGGLE_FEATURE_ON) and `off-i` (`state` IN [off] → TOGGLE_FEATURE_OFF). A sender posts, per source and
strictly one after another, `{"src": i, "seq": n, "state": "on" if n is odd else "off"}`. So:

- each stored signal matches exactly one action set of its source → exactly one event expected;
- the flag of source i must end in the state of the signal whose run changed it last; with one worker
  (signals handled in id order) that is the source's last stored signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from stress._procs import ADMIN_SECRET

PROJECT = "default"
ENVIRONMENT = "production"


@dataclass
class Source:
    index: int
    endpoint_id: int
    name: str
    token: str
    flag: str
    on_set: int
    off_set: int


def _ok(response: httpx.Response) -> dict[str, object]:
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    body = response.json()
    assert isinstance(body, dict)
    return body


async def create_sources(base_url: str, count: int) -> list[Source]:
    """Create `count` sources (endpoint, token, flag, on/off action sets) on a fresh database."""
    headers = {"Authorization": ADMIN_SECRET}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0) as admin:
        account = _ok(
            await admin.post(
                "/api/admin/service-account", json={"username": "stress-bot", "name": "Stress", "rootRole": 2}
            )
        )
        actor = int(str(account["id"]))
        sources = []
        for i in range(count):
            flag = f"stress-flag-{i}"
            _ok(await admin.post(f"/api/admin/projects/{PROJECT}/features", json={"name": flag}))
            endpoint = _ok(await admin.post("/api/admin/signal-endpoints", json={"name": f"stress-src-{i}"}))
            endpoint_id = int(str(endpoint["id"]))
            token = _ok(
                await admin.post(f"/api/admin/signal-endpoints/{endpoint_id}/tokens", json={"name": "t"})
            )
            sets = {}
            for state, action in (("on", "TOGGLE_FEATURE_ON"), ("off", "TOGGLE_FEATURE_OFF")):
                created = _ok(
                    await admin.post(
                        f"/api/admin/projects/{PROJECT}/actions",
                        json={
                            "name": f"{state}-{i}",
                            "actorId": actor,
                            "match": {
                                "source": "signal-endpoint",
                                "sourceId": endpoint_id,
                                "payload": {"state": {"operator": "IN", "values": [state]}},
                            },
                            "actions": [
                                {
                                    "action": action,
                                    "sortOrder": 1,
                                    "executionParams": {
                                        "project": PROJECT,
                                        "environment": ENVIRONMENT,
                                        "featureName": flag,
                                    },
                                }
                            ],
                        },
                    )
                )
                sets[state] = int(str(created["id"]))
            sources.append(
                Source(
                    index=i,
                    endpoint_id=endpoint_id,
                    name=f"stress-src-{i}",
                    token=str(token["token"]),
                    flag=flag,
                    on_set=sets["on"],
                    off_set=sets["off"],
                )
            )
        return sources


def state_of(seq: int) -> str:
    return "on" if seq % 2 == 1 else "off"


@dataclass
class SendLog:
    """What the senders saw: acknowledged signals (id → (source, seq)) and every status/error."""

    acked: dict[int, tuple[int, int]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    # (seconds since start, status or error) of every call, for time-line checks.
    timeline: list[tuple[float, str]] = field(default_factory=list)
    slowest: float = 0.0
    # (seconds since start, seconds the call took) of every answered call.
    latencies: list[tuple[float, float]] = field(default_factory=list)
    next_seq: dict[int, int] = field(default_factory=dict)


async def send_one(
    client: httpx.AsyncClient, base_url: str, source: Source, seq: int, log: SendLog, started: float
) -> str:
    """Post one signal; record the outcome. Returns the status ("200", "503", or an error name)."""
    t0 = time.monotonic()
    log.sent += 1
    try:
        response = await client.post(
            f"{base_url}/api/signal-endpoint/{source.name}",
            json={"src": source.index, "seq": seq, "state": state_of(seq)},
            headers={"Authorization": f"Bearer {source.token}"},
        )
        outcome = str(response.status_code)
        if response.status_code == 200:
            signal_id = int(response.json()["signals"][0]["id"])
            log.acked[signal_id] = (source.index, seq)
    except httpx.HTTPError as exc:
        outcome = type(exc).__name__
    elapsed = time.monotonic() - t0
    log.slowest = max(log.slowest, elapsed)
    if outcome.isdigit():
        log.latencies.append((t0 - started, elapsed))
    log.statuses[outcome] += 1
    log.timeline.append((t0 - started, outcome))
    return outcome


async def stream(
    base_urls: list[str],
    sources: list[Source],
    log: SendLog,
    *,
    stop: asyncio.Event,
    per_source_rate: float,
    limit_per_source: int | None = None,
    timeout: float = 10.0,
) -> None:
    """One sequential sender per source (so ids grow with seq per source) until `stop` or the limit.

    Consecutive calls of one source alternate over `base_urls`. Failed calls are not retried: the next
    call carries the next sequence number (a failed call's signal may or may not exist — both are fine,
    and the checks tell them apart by reading the database).
    """
    started = time.monotonic()
    interval = 1.0 / per_source_rate if per_source_rate > 0 else 0.0

    async def one_source(source: Source, client: httpx.AsyncClient) -> None:
        seq = log.next_seq.get(source.index, 1)
        while not stop.is_set() and (limit_per_source is None or seq <= limit_per_source):
            t0 = time.monotonic()
            outcome = await send_one(client, base_urls[seq % len(base_urls)], source, seq, log, started)
            seq += 1
            log.next_seq[source.index] = seq
            pause = interval - (time.monotonic() - t0)
            if outcome not in {"200"}:
                pause = max(pause, 0.05)  # don't spin on a server that is down
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)

    limits = httpx.Limits(max_connections=len(sources) * 2, max_keepalive_connections=len(sources) * 2)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(one_source(source, client) for source in sources))
