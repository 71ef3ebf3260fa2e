"""`switchman worker --metrics-port N`: a real worker process serves /metrics (bearer-protected when a token
is set) and /health on its own port, and its counters show the drain it did (both databases)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import assert_error, unique
from tests.factories import list_events
from tests.metrics.helpers import Scrape
from tests.unleash_oss import free_port
from tests.worker.conftest import Scenario, toggle

START_BOUND_SECONDS = 60.0  # a bound on a broken start, not a timing assertion


@contextmanager
def worker_process(db_url: str, cwd: Path, *args: str, **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHMAN_")}
    env.update(
        SWITCHMAN_DATABASE_URL=db_url,
        SWITCHMAN_MIGRATE_ON_START="false",
        SWITCHMAN_LOG_LEVEL="WARNING",
        SWITCHMAN_WORKER_POLL_INTERVAL_SECONDS="0.2",
    )
    env.update({f"SWITCHMAN_{name.upper()}": value for name, value in settings.items()})
    with (cwd / "worker.stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "switchman", "worker", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


async def _wait_for_health(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(int(START_BOUND_SECONDS / 0.1)):
            assert process.poll() is None, "the worker stopped"
            try:
                response = await http.get(f"{url}/health")
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            assert response.status_code == 200, response.text
            assert response.json() == {"health": "GOOD"}
            return
    raise AssertionError("the worker's metrics port never answered")


async def test_the_worker_serves_its_own_metrics_on_its_port(
    client: httpx.AsyncClient, scenario: Scenario, db_url: str, tmp_path: Path
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    port = free_port()
    secret = unique("scrape")
    url = f"http://127.0.0.1:{port}"
    with worker_process(db_url, tmp_path, "--metrics-port", str(port), metrics_token=secret) as process:
        await _wait_for_health(url, process)
        await scenario.send(client, {"alert": "firing"})
        for _ in range(300):  # a bound on a broken run, not a timing assertion
            events = await list_events(client, set_id)
            if events and events[0]["state"] == "success":
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=url) as http:
            assert_error(await http.get("/metrics"), 401, "UnauthorizedError")
            assert_error(await http.get("/metrics", headers={"Authorization": "Bearer nope"}), 401)
            response = await http.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200, response.text
    scraped = Scrape(response.text)  # a fresh process: its counters hold exactly this test's drain
    assert scraped.value("switchman_signal_processing_seconds_count") == 1
    runs = {"project": "default", "action_set": str(set_id), "state": "success"}
    assert scraped.value("switchman_action_runs_total", **runs) == 1
    assert scraped.value("switchman_flag_backend_calls_total", backend="embedded", outcome="success") == 1
    assert scraped.value("switchman_signal_queue_depth") == 0
    assert process.returncode == 0 or process.returncode == -15  # stopped by the test, cleanly


async def test_a_worker_whose_metrics_port_is_taken_stops_with_one_line(
    db_url: str, db: object, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with worker_process(db_url, tmp_path, "--metrics-port", str(port)) as process:
            returncode = await asyncio.to_thread(process.wait, START_BOUND_SECONDS)
        stderr = (tmp_path / "worker.stderr").read_text()
    assert returncode == 2
    assert f"cannot serve worker metrics on 127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr
