"""The compose stack's switchman processes, run as compose.yaml starts them but without containers (none
can run on the machines these tests run on; docs/deployment.md, "Validation"): on one empty PostgreSQL
database, both `serve --no-worker` replicas and both workers start at the same moment, so they race to
migrate it; the Dockerfile's HEALTHCHECK command passes against each replica; a signal posted to one
replica is run by a worker, and the flag change and its event are seen through the other replica."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, empty_database
from tests.deploy.files import DOCKERFILE, REPO, compose, dockerfile_stages, interpolated

WAIT_SECONDS = 120.0  # a bound on waiting, never asserted as a duration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / "deploy" / "env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _process_env(service: dict[str, Any], db_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SWITCHMAN_")}
    example = _env_example()
    env.update({name: interpolated(str(value), example) for name, value in service["environment"].items()})
    env.update(SWITCHMAN_DATABASE_URL=db_url, SWITCHMAN_INIT_ADMIN_API_TOKENS=ADMIN_TOKEN)
    return env


@pytest.fixture
def stack_db(tmp_path: Path) -> Iterator[str]:
    with empty_database("postgresql", tmp_path, prefix="deploy_stack") as url:
        yield url


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_stack_processes_start_together_on_an_empty_database_and_run_a_kill_switch(
    stack_db: str, tmp_path: Path
) -> None:
    services = compose()["services"]
    serve, worker = services["serve"], services["worker"]
    processes: list[subprocess.Popen[bytes]] = []
    ports = [_free_port() for _ in range(serve["deploy"]["replicas"])]
    logs = tmp_path / "logs"
    logs.mkdir()

    def spawn(argv: list[str], service: dict[str, Any], name: str) -> None:
        with (logs / f"{name}.log").open("wb") as out:  # the child keeps its own descriptor
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "switchman", *argv],
                    env=_process_env(service, stack_db),
                    cwd=tmp_path,  # no developer's .env
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    try:
        for index, port in enumerate(ports):
            argv = [("127.0.0.1" if arg == "0.0.0.0" else arg) for arg in serve["command"]]
            spawn([*argv, "--port", str(port)], serve, f"serve-{index}")
        # One host here, so each worker gets a port of its own for what compose.yaml gives 9464 in each.
        worker_ports = [_free_port() for _ in range(worker["deploy"]["replicas"])]
        for index, port in enumerate(worker_ports):
            own = {**worker, "environment": {**worker["environment"], "SWITCHMAN_WORKER_METRICS_PORT": port}}
            spawn(list(worker["command"]), own, f"worker-{index}")

        _wait(lambda: all(_healthy(port) for port in ports), "both replicas' /health")
        _wait(lambda: all(_healthy(port) for port in worker_ports), "both workers' /health")
        assert all(process.poll() is None for process in processes), _logs(logs)

        # the image's HEALTHCHECK, as the container runtime runs it
        [check] = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))[-1].of("HEALTHCHECK")
        argv = json.loads(check.arguments.partition("CMD ")[2])
        for port in ports:
            result = subprocess.run(
                [sys.executable, *argv[1:]],
                env={**os.environ, "SWITCHMAN_PORT": str(port)},
                capture_output=True,
                timeout=30,
            )
            assert result.returncode == 0, result.stderr
        # the workers' health check, as compose.yaml declares it
        worker_check = worker["healthcheck"]["test"]
        assert worker_check[:3] == ["CMD", "python", "-c"]
        for port in worker_ports:
            result = subprocess.run(
                [sys.executable, *worker_check[2:]],
                env={**os.environ, "SWITCHMAN_WORKER_METRICS_PORT": str(port)},
                capture_output=True,
                timeout=30,
            )
            assert result.returncode == 0, result.stderr

        _kill_switch(*(f"http://127.0.0.1:{port}" for port in ports[:2]))
        assert all(process.poll() is None for process in processes), _logs(logs)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _logs(folder: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}" for path in folder.iterdir()
    )


def _kill_switch(first: str, second: str) -> None:
    """The README's first session across the replicas: set up through `first`, fire through `second`."""
    headers = {"Authorization": ADMIN_TOKEN}
    with (
        httpx.Client(base_url=first, headers=headers, timeout=10) as a,
        httpx.Client(base_url=second, timeout=10) as b,
    ):
        project = "/api/admin/projects/default"
        assert a.post(f"{project}/features", json={"name": "checkout-v2"}).status_code == 201
        assert a.post(f"{project}/features/checkout-v2/environments/production/on").status_code == 200
        bot = a.post("/api/admin/service-account", json={"username": "bot", "name": "Bot", "rootRole": 2})
        endpoint = a.post("/api/admin/signal-endpoints", json={"name": "apm"})
        token = a.post(f"/api/admin/signal-endpoints/{endpoint.json()['id']}/tokens", json={"name": "alerts"})
        action_set = a.post(
            f"{project}/actions",
            json={
                "name": "kill checkout on error storm",
                "actorId": bot.json()["id"],
                "match": {
                    "source": "signal-endpoint",
                    "sourceId": endpoint.json()["id"],
                    "payload": {"alert.status": {"operator": "IN", "values": ["firing"]}},
                },
                "actions": [
                    {
                        "action": "TOGGLE_FEATURE_OFF",
                        "sortOrder": 1,
                        "executionParams": {
                            "project": "default",
                            "environment": "production",
                            "featureName": "checkout-v2",
                        },
                    }
                ],
            },
        )
        assert action_set.status_code == 201, action_set.text
        fired = b.post(
            "/api/signal-endpoint/apm",
            json={"alert": {"status": "firing"}},
            headers={"Authorization": f"Bearer {token.json()['token']}"},
        )
        assert fired.status_code == 200, fired.text

        def events() -> list[dict[str, Any]]:
            listed = b.get(f"{project}/actions/{action_set.json()['id']}/events", headers=headers)
            result: list[dict[str, Any]] = listed.json()["actionSetEvents"]
            return result

        _wait(lambda: [event["state"] for event in events()] == ["success"], "the run's event")
        flag = a.get(f"{project}/features/checkout-v2").json()
        assert {env["name"]: env["enabled"] for env in flag["environments"]}["production"] is False
