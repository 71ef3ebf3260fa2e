"""The Unleash OSS helper's own rules (tests/unleash_oss.py and bench/_unleash.py rely on them).

Starting a real server is exercised by every test that uses the `unleash_server` fixture; these check what
that path cannot: the requirements message, and that `stop` never signals a process it did not start.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import unleash_oss


def _fake_tool(folder: Path, name: str, script: str) -> None:
    tool = folder / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


def test_missing_npm_is_named(tmp_path: Path) -> None:
    problem = unleash_oss.requirements_problem(path=str(tmp_path))
    assert problem is not None
    assert problem.startswith("npm is not on PATH")


def test_missing_node_is_named(tmp_path: Path) -> None:
    _fake_tool(tmp_path, "npm", "exit 0")
    problem = unleash_oss.requirements_problem(path=str(tmp_path))
    assert problem == "node is not on PATH (Unleash OSS needs Node >= 20)"


def test_too_old_node_is_named(tmp_path: Path) -> None:
    _fake_tool(tmp_path, "npm", "exit 0")
    _fake_tool(tmp_path, "node", "echo 18")
    problem = unleash_oss.requirements_problem(path=str(tmp_path))
    assert problem == "node on PATH is version 18; Unleash OSS needs Node >= 20"


def test_a_recent_node_with_npm_is_enough(tmp_path: Path) -> None:
    _fake_tool(tmp_path, "npm", "exit 0")
    _fake_tool(tmp_path, "node", "echo 20")
    assert unleash_oss.requirements_problem(path=str(tmp_path)) is None


def test_node_major_of_a_broken_binary_is_zero(tmp_path: Path) -> None:
    assert unleash_oss.node_major(str(tmp_path / "no-such-node")) == 0


def test_stop_refuses_a_process_it_did_not_start() -> None:
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"], stdout=subprocess.PIPE
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == b"up\n"  # exec'd: its own command line
        with pytest.raises(unleash_oss.UnleashOssError, match="not an unleash-server"):
            unleash_oss.stop(other.pid)
        assert other.poll() is None  # untouched
        assert unleash_oss.main(["stop", str(other.pid)]) == 1
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
        other.stdout.close()


def test_stop_of_a_finished_process_is_a_no_op() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    unleash_oss.stop(finished.pid)  # no such process any more: nothing to do, no error


def test_start_refuses_a_missing_install_and_a_hostile_database_name(tmp_path: Path) -> None:
    with pytest.raises(unleash_oss.UnleashOssError, match="not installed"):
        unleash_oss.start(tmp_path, port=1, database="x", pg_url="postgresql://127.0.0.1")
    (tmp_path / unleash_oss.SERVER_SCRIPT).parent.mkdir(parents=True)
    (tmp_path / unleash_oss.SERVER_SCRIPT).write_text("")
    with pytest.raises(unleash_oss.UnleashOssError, match="plain identifier"):
        unleash_oss.start(
            tmp_path, port=1, database='x"; DROP DATABASE test; --', pg_url="postgresql://127.0.0.1"
        )


def test_the_server_environment_bootstraps_tokens_and_never_phones_home() -> None:
    env = unleash_oss.server_environment(
        port=4999, database_url="postgresql://h/db", extra={"SDK_API_RATE_LIMIT_PER_MINUTE": "9"}
    )
    assert env["HTTP_PORT"] == "4999"
    assert env["DATABASE_URL"] == "postgresql://h/db"
    assert env["INIT_ADMIN_API_TOKENS"] == unleash_oss.ADMIN_TOKEN
    assert env["INIT_CLIENT_API_TOKENS"].split(",") == list(unleash_oss.CLIENT_TOKENS)
    assert (env["CHECK_VERSION"], env["SEND_TELEMETRY"]) == ("false", "false")
    assert env["SDK_API_RATE_LIMIT_PER_MINUTE"] == "9"
    assert env["PATH"] == os.environ["PATH"]
