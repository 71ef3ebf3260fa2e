"""Unleash's official Python SDK against a real `switchman serve` process, on SQLite and PostgreSQL.

The SDK (UnleashClient 6.9.1, a dev dependency) reads a flag from the embedded store; a signal makes an
action set turn the flag off; the SDK must see it off within its refresh interval + 1 s, counted from
the signal's 200 (the issue's functional bound; the measured figures are in bench/sdk_propagation.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from UnleashClient import UnleashClient

from switchman.db.engine import Database
from tests.conftest import ADMIN_TOKEN

CLIENT_TOKEN = "default:development.sdk-end-to-end-secret"
REFRESH_INTERVAL = 1  # seconds, the SDK's poll interval
START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(db_url: str, db: Database, tmp_path: Path) -> Iterator[str]:
    """`switchman serve` (API + in-process worker) on the clean test database; yields its base URL."""
    port = _free_port()
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHMAN_")}
    env.update(
        SWITCHMAN_DATABASE_URL=db_url,
        SWITCHMAN_INIT_ADMIN_API_TOKENS=ADMIN_TOKEN,
        SWITCHMAN_INIT_CLIENT_API_TOKENS=CLIENT_TOKEN,
        SWITCHMAN_LOG_FORMAT="json",
        SWITCHMAN_LOG_LEVEL="INFO",
    )
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "switchman", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"switchman serve exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"switchman serve not healthy after {START_TIMEOUT} s: {log_path.read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _requests_in_log(log_path: Path) -> list[dict[str, Any]]:
    out = []
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("msg", record.get("message")) == "request":
            out.append(record)
    return out


def _setup_kill_switch(admin: httpx.Client, flag: str) -> tuple[str, str]:
    """Flag on in development; an action set turning it off on any signal. Returns (endpoint, token)."""

    def ok(response: httpx.Response, status: int = 201) -> dict[str, Any]:
        assert response.status_code == status, response.text
        return response.json() if response.content else {}

    ok(admin.post("/api/admin/projects/default/features", json={"name": flag}))
    ok(admin.post(f"/api/admin/projects/default/features/{flag}/environments/development/on"), 200)
    actor = ok(
        admin.post("/api/admin/service-account", json={"username": "kill-bot", "name": "Kill", "rootRole": 2})
    )
    endpoint = ok(admin.post("/api/admin/signal-endpoints", json={"name": "apm"}))
    token = ok(admin.post(f"/api/admin/signal-endpoints/{endpoint['id']}/tokens", json={"name": "alerts"}))
    ok(
        admin.post(
            "/api/admin/projects/default/actions",
            json={
                "name": "kill on error storm",
                "actorId": actor["id"],
                "match": {"source": "signal-endpoint", "sourceId": endpoint["id"], "payload": {}},
                "actions": [
                    {
                        "action": "TOGGLE_FEATURE_OFF",
                        "sortOrder": 1,
                        "executionParams": {
                            "project": "default",
                            "environment": "development",
                            "featureName": flag,
                        },
                    }
                ],
            },
        )
    )
    return "apm", token["token"]


def test_sdk_reads_the_flag_and_sees_a_signal_turn_it_off(server: str, tmp_path: Path) -> None:
    flag = "checkout-v2"
    with httpx.Client(base_url=server, headers={"Authorization": ADMIN_TOKEN}, timeout=10) as admin:
        endpoint, signal_token = _setup_kill_switch(admin, flag)

        sdk = UnleashClient(
            url=f"{server}/api",
            app_name="switchman-e2e",
            refresh_interval=REFRESH_INTERVAL,
            metrics_interval=1,
            custom_headers={"Authorization": CLIENT_TOKEN},
            cache_directory=str(tmp_path / "sdk-cache"),
        )
        try:
            sdk.initialize_client()
            assert sdk.is_enabled(flag) is True
            assert sdk.is_enabled("no-such-flag") is False

            sent = admin.post(
                f"/api/signal-endpoint/{endpoint}",
                json={"alert": {"status": "firing"}},
                headers={"Authorization": f"Bearer {signal_token}"},
            )
            assert sent.status_code == 200, sent.text
            acknowledged = time.monotonic()
            deadline = acknowledged + REFRESH_INTERVAL + 1.0
            while sdk.is_enabled(flag) and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_off_after = time.monotonic() - acknowledged
            assert sdk.is_enabled(flag) is False, f"still on {seen_off_after:.2f} s after the signal's 200"
            time.sleep(1.5)  # let the SDK send a metrics batch
        finally:
            sdk.destroy()

        tokens = admin.get("/api/admin/api-tokens").json()["tokens"]
        assert any(t["secret"] == "default:development.****" and t["seenAt"] for t in tokens)  # registered

    requests = _requests_in_log(tmp_path / "serve.log")
    client_calls = [
        (r["method"], r["path"], r["status"]) for r in requests if r["path"].startswith("/api/client/")
    ]
    assert ("POST", "/api/client/register", 202) in client_calls, client_calls
    assert ("POST", "/api/client/metrics", 202) in client_calls, client_calls
    assert any(call[:2] == ("GET", "/api/client/features") and call[2] == 304 for call in client_calls), (
        client_calls
    )
    assert all(status in (200, 202, 304) for _, _, status in client_calls), client_calls
