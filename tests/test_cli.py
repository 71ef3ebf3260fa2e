"""The command line: help, one-line start-up errors, and two `serve` processes starting on one database."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from switchman.config import to_async_url
from switchman.db.engine import Database
from switchman.db.migrate import head_revision
from tests.conftest import ADMIN_TOKEN

SWITCHMAN = [sys.executable, "-m", "switchman"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHMAN_")}
    env.update(extra)
    return env


def test_help_lists_commands() -> None:
    out = subprocess.run(
        [*SWITCHMAN, "--help"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for command in ("serve", "worker", "migrate"):
        assert command in out


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SWITCHMAN_DATABASE_URL": "mysql://localhost/x"}, "unsupported database"),
        ({"SWITCHMAN_DATABASE_URL": "::not a url::"}, "not a database URL"),
        ({"SWITCHMAN_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing"}, "cannot use the database"),
        ({"SWITCHMAN_PORT": "not-a-port"}, "SWITCHMAN_PORT"),
        ({"SWITCHMAN_LOG_FORMAT": "xml"}, "SWITCHMAN_LOG_FORMAT"),
    ],
)
def test_bad_configuration_stops_with_one_line(env: dict[str, str], expected: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [*SWITCHMAN, "serve"], capture_output=True, text=True, env=_env(**env), cwd=tmp_path, timeout=60
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip() and "alembic" not in line]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_init_admin_token_stops_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SWITCHMAN, "migrate"],
        capture_output=True,
        text=True,
        env=_env(SWITCHMAN_DATABASE_URL=f"sqlite:///{tmp_path}/x.db", SWITCHMAN_INIT_ADMIN_API_TOKENS="nope"),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "*:*." in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no /health on port {port}")


def test_two_serve_processes_start_together_on_one_empty_database(db_url: str, tmp_path: Path) -> None:
    """Both replicas migrate concurrently (advisory lock / BEGIN IMMEDIATE) and both serve."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}/fresh.db"
    else:
        base, _, _ = db_url.rpartition("/")
        name = f"switchman_cli_{os.getpid()}_{int(time.time() * 1000) % 100000}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        url = f"{base}/{name}"
    ports = [_free_port(), _free_port()]
    procs = [
        subprocess.Popen(
            [*SWITCHMAN, "serve", "--port", str(port), "--no-worker"],
            env=_env(SWITCHMAN_DATABASE_URL=url, SWITCHMAN_INIT_ADMIN_API_TOKENS=ADMIN_TOKEN),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 60
        for port, proc in zip(ports, procs, strict=True):
            _wait_healthy(port, proc, deadline)
            tokens = httpx.get(
                f"http://127.0.0.1:{port}/api/admin/api-tokens",
                headers={"Authorization": ADMIN_TOKEN},
                timeout=5,
            )
            assert tokens.status_code == 200
            assert len(tokens.json()["tokens"]) == 1  # the init token was created once, not twice
        assert asyncio.run(_revisions(url)) == [head_revision()]
    finally:
        for proc in procs:
            proc.terminate()
        outcomes = []
        for proc in procs:
            proc.wait(timeout=20)
            errors = proc.stderr.read().decode() if proc.stderr else ""
            if proc.stderr:
                proc.stderr.close()
            outcomes.append((proc.returncode, errors))
        for returncode, errors in outcomes:
            assert returncode in (0, -15), errors
        if not db_url.startswith("sqlite"):
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)'))


async def _revisions(url: str) -> list[str]:
    db = Database(to_async_url(url))
    try:
        async with db.read() as conn:
            return list((await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars())
    finally:
        await db.dispose()


async def _pg_admin(sql: str) -> None:
    from tests.conftest import _pg_exec

    await _pg_exec(sql)
