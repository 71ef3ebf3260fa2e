"""`switchman serve` with bad SWITCHMAN_INIT_CLIENT_API_TOKENS stops with one line (exit status 2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SWITCHMAN = [sys.executable, "-m", "switchman"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("default:development", "'<project>:<environment>.<secret>'"),
        ("default:staging.long-enough-secret", "environment 'staging' does not exist"),
        ("nope:development.long-enough-secret", "project 'nope' does not exist"),
    ],
)
def test_bad_init_client_token_stops_serve_with_one_line(value: str, expected: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHMAN_")}
    env.update(SWITCHMAN_DATABASE_URL=f"sqlite:///{tmp_path}/x.db", SWITCHMAN_INIT_CLIENT_API_TOKENS=value)
    result = subprocess.run(
        [*SWITCHMAN, "serve", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "alembic" not in line]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "long-enough-secret" not in result.stderr
