"""Abuse: (1) a burst from many connections at one signal endpoint is held to its rate limit (429 with
`Retry-After` and an Unleash error body) while another endpoint and the admin API keep answering 200;
(2) slow clients (slowloris-style: headers or a body dripped one byte a second, bounded in number and
time) do not block anybody else.

    python -m stress.abuse [--quick]      # full: 10 s burst, 30 s slow clients; quick: 3 s, 10 s
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import httpx

from stress._procs import ADMIN_SECRET, base_env, run_dir
from stress._report import Result, main
from stress._scenario import create_sources

RATE = 20  # SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND for this run
BURST_CONNECTIONS = 100
SLOW_CLIENTS = 50
# Others' calls during the abuse must each answer within this (a generous bound for a loaded 2-CPU box;
# a blocked server would exceed it by far).
OTHERS_MAX_SECONDS = 2.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _bystanders(
    base: str, token_b: str, stop: asyncio.Event, rows: list[tuple[str, int, float]]
) -> None:
    """A well-behaved caller: endpoint B at ~5/s and admin reads at ~5/s, each call timed."""
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        seq = 0
        while not stop.is_set():
            seq += 1
            for kind, call in (
                (
                    "other-endpoint",
                    client.post(
                        "/api/signal-endpoint/stress-src-1",
                        json={"seq": seq, "state": "none"},
                        headers={"Authorization": f"Bearer {token_b}"},
                    ),
                ),
                (
                    "admin-read",
                    client.get("/api/admin/signal-endpoints", headers={"Authorization": ADMIN_SECRET}),
                ),
            ):
                t0 = time.monotonic()
                try:
                    status = (await call).status_code
                except httpx.HTTPError:
                    status = 0
                rows.append((kind, status, time.monotonic() - t0))
            await asyncio.sleep(0.2)


async def burst(base: str, token_a: str, seconds: float, result: Result) -> None:
    statuses: dict[int, int] = {}
    retry_after_bad = 0
    body_bad = 0
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=BURST_CONNECTIONS, max_keepalive_connections=BURST_CONNECTIONS)

    async def hammer(client: httpx.AsyncClient) -> None:
        nonlocal retry_after_bad, body_bad
        while time.monotonic() < stop_at:
            try:
                response = await client.post(
                    "/api/signal-endpoint/stress-src-0",
                    json={"state": "none"},
                    headers={"Authorization": f"Bearer {token_a}"},
                )
            except httpx.HTTPError:
                statuses[0] = statuses.get(0, 0) + 1
                continue
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 429:
                if (
                    not response.headers.get("retry-after", "").isdigit()
                    or int(response.headers["retry-after"]) < 1
                ):
                    retry_after_bad += 1
                body = response.json()
                if not {"id", "name", "message"} <= body.keys():
                    body_bad += 1

    rows: list[tuple[str, int, float]] = []
    stop = asyncio.Event()
    others = asyncio.create_task(_bystanders(base, _TOKENS["b"], stop, rows))
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=10.0, limits=limits) as client:
        await asyncio.gather(*(hammer(client) for _ in range(BURST_CONNECTIONS)))
    elapsed = time.monotonic() - t0
    stop.set()
    await others
    accepted = statuses.get(200, 0)
    allowed = RATE + RATE * elapsed
    result.figures["burst"] = {
        "connections": BURST_CONNECTIONS,
        "seconds": round(elapsed, 1),
        "replies": {str(k): v for k, v in sorted(statuses.items())},
        "accepted_limit": round(allowed),
        "others": _summary(rows),
    }
    if accepted > allowed * 1.05 + 2:
        result.fail(f"burst: {accepted} calls accepted, the limit allows {allowed:.0f}")
    if statuses.get(429, 0) == 0:
        result.fail("burst: no 429")
    if set(statuses) - {200, 429}:
        result.fail(f"burst: replies other than 200/429: {statuses}")
    if retry_after_bad or body_bad:
        result.fail(
            f"burst: {retry_after_bad} 429s without a valid Retry-After, {body_bad} without an error body"
        )
    _judge_others("burst", rows, result)


def _summary(rows: list[tuple[str, int, float]]) -> dict[str, object]:
    summary: dict[str, object] = {}
    for kind in sorted({k for k, _, _ in rows}):
        times = [s for k, _, s in rows if k == kind]
        codes = [c for k, c, _ in rows if k == kind]
        summary[kind] = {
            "calls": len(times),
            "non_200": sum(1 for c in codes if c != 200),
            "p50_ms": round(_pct(times, 0.5) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1) if times else 0,
        }
    return summary


def _judge_others(phase: str, rows: list[tuple[str, int, float]], result: Result) -> None:
    if not rows:
        result.fail(f"{phase}: the well-behaved caller made no call")
        return
    failed = [(k, c) for k, c, _ in rows if c != 200]
    if failed:
        result.fail(f"{phase}: well-behaved calls failed: {failed[:10]}")
    slow = [(k, round(s, 2)) for k, _, s in rows if s > OTHERS_MAX_SECONDS]
    if slow:
        result.fail(f"{phase}: well-behaved calls slower than {OTHERS_MAX_SECONDS} s: {slow[:10]}")


async def _slow_client(port: int, kind: str, stop: asyncio.Event, counters: dict[str, int]) -> None:
    """Drip one byte a second: either the request head never ends, or the body never completes."""
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        counters["connect_failed"] += 1
        return
    if kind == "head":
        data = b"GET /api/admin/signal-endpoints HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
    else:
        head = (
            b"POST /api/signal-endpoint/stress-src-0 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
        )
        writer.write(head)
        data = b"{" + b" " * 9_999
    try:
        for byte in data:
            if stop.is_set():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        counters["held_to_the_end"] += 1
    except (ConnectionError, OSError):
        counters["closed_by_server"] += 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def slow_clients(base: str, port: int, pid: int, seconds: float, result: Result) -> None:
    fds_before = _open_fds(pid)
    stop = asyncio.Event()
    counters = {"connect_failed": 0, "held_to_the_end": 0, "closed_by_server": 0}
    slow = [
        asyncio.create_task(_slow_client(port, "head" if i % 2 == 0 else "body", stop, counters))
        for i in range(SLOW_CLIENTS)
    ]
    rows: list[tuple[str, int, float]] = []
    others = asyncio.create_task(_bystanders(base, _TOKENS["b"], stop, rows))
    await asyncio.sleep(seconds)
    fds_during = _open_fds(pid)
    stop.set()
    await asyncio.gather(*slow, others)
    await asyncio.sleep(2.0)  # let the server notice the closed sockets
    fds_after = _open_fds(pid)
    result.figures["slow_clients"] = {
        "clients": SLOW_CLIENTS,
        "seconds": seconds,
        "outcome": counters,
        "server_fds_before_during_after": [fds_before, fds_during, fds_after],
        "others": _summary(rows),
    }
    _judge_others("slow clients", rows, result)
    if fds_after > fds_before + 5:
        result.fail(
            f"slow clients: the server kept {fds_after - fds_before} more descriptors after they left"
        )


_TOKENS: dict[str, str] = {}


async def run(quick: bool) -> Result:
    result = Result("abuse (rate-limit burst, slow clients)")
    with run_dir("abuse") as (tmp, procs):
        env = base_env(f"sqlite:///{tmp}/stress.db", SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND=str(RATE))
        server = procs.server("serve", env)
        server.start()
        await server.wait_ready()
        sources = await create_sources(server.url, 2)
        _TOKENS.update(a=sources[0].token, b=sources[1].token)
        await burst(server.url, sources[0].token, 3.0 if quick else 10.0, result)
        await asyncio.sleep(2.0)  # the bucket refills
        await slow_clients(server.url, server.port, server.pid, 10.0 if quick else 30.0, result)
        if not server.alive():
            result.fail("the server died")
    result.figures["rate_limit_per_s"] = RATE
    result.figures["others_max_seconds_threshold"] = OTHERS_MAX_SECONDS
    return result


if __name__ == "__main__":
    main(run, __doc__ or "")
