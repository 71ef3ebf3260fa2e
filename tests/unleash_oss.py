"""A real Unleash OSS 8.2.0 server for the whole test session (pytest plugin, see tests/conftest.py).

One server per session, shared by the backend tests (tests/flags_remote) and the end-to-end suite
(tests/integration): installed by `shared/tools/unleash-oss.sh` into `<repo>/.cache/unleash-oss`
(git-ignored; reused when present; `SWITCHMAN_TEST_UNLEASH_DIR` may point elsewhere), started on a free
port with a throw-away PostgreSQL database, stopped and the database dropped at the end of the session.
It is only started when a test asks for it. It runs by default: when npm, the script, PostgreSQL or the
install is missing, the tests FAIL with the reason instead of skipping. The system Node is used unless
`UNLEASH_NODE_VERSION` says otherwise (8.2.0 declares Node >= 22 but runs these exchanges on Node 20; see
the shared spec, real-server §1).

Tests share the server, so each one creates flags with names of its own (`tests.conftest.unique`).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_SERVER, REPO_ROOT

SCRIPT = REPO_ROOT.parent / "shared" / "tools" / "unleash-oss.sh"
INSTALL_DIR = Path(os.environ.get("SWITCHMAN_TEST_UNLEASH_DIR") or REPO_ROOT / ".cache" / "unleash-oss")
ADMIN_TOKEN = "*:*.unleash-insecure-admin-api-token"
CLIENT_TOKEN = "default:development.unleash-insecure-api-token"  # a backend (SDK) token for development
PRODUCTION_CLIENT_TOKEN = "default:production.unleash-insecure-prod-api-token"
ADMIN_TOKEN_USER_ID = -42  # Unleash's user for admin API tokens: the author of every remote change


def _script_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("UNLEASH_NODE_VERSION", "system")
    env["PG_URL"] = PG_SERVER
    return env


def _run_script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=_script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _installed() -> bool:
    return (INSTALL_DIR / "node_modules" / "unleash-server" / "dist" / "server.js").is_file()


def _install_once() -> None:
    """Install Unleash OSS into INSTALL_DIR unless present; a lock keeps parallel runs from racing."""
    if not SCRIPT.is_file():
        pytest.fail(f"the Unleash OSS helper script is missing: {SCRIPT}")
    if shutil.which("npm") is None:
        pytest.fail("npm is required to install Unleash OSS for the real-server tests, and it is not on PATH")
    INSTALL_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_DIR.parent / f".{INSTALL_DIR.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed():
            return
        result = _run_script("install", str(INSTALL_DIR), timeout=600)
        if result.returncode != 0 or not _installed():
            pytest.fail(f"installing Unleash OSS into {INSTALL_DIR} failed:\n{result.stderr[-3000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class UnleashServer:
    """A running Unleash OSS process on its own port and database; `stop()`/`start()` keep both."""

    port: int
    database: str
    pid: str | None = field(default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (again) on the same port and database; waits for /health."""
        assert self.pid is None, "already running"
        started = _run_script("start", str(INSTALL_DIR), str(self.port), self.database, timeout=180)
        if started.returncode != 0:
            pytest.fail(f"starting Unleash OSS failed:\n{started.stderr[-3000:]}")
        self.pid = started.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        """Stop the server process (SIGTERM, SIGKILL after 15 s); its port then refuses connections."""
        if self.pid is not None:
            _run_script("stop", self.pid, timeout=60)
            self.pid = None

    def admin(self) -> httpx.Client:
        """A synchronous client of the admin API with the bootstrap admin token."""
        return httpx.Client(base_url=self.url, headers={"Authorization": ADMIN_TOKEN}, timeout=30)


@pytest.fixture(scope="session")
def unleash_server() -> Iterator[UnleashServer]:
    """The session's Unleash OSS server (started on first use)."""
    _install_once()
    server = UnleashServer(port=free_port(), database=f"switchman_unleash_{secrets.token_hex(4)}")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        (INSTALL_DIR / f"unleash-{server.port}.log").unlink(missing_ok=True)
        # In a thread of its own: asyncio.run must not touch the test session's event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, _drop_database(server.database)).result()


@pytest.fixture(scope="session")
def unleash_url(unleash_server: UnleashServer) -> str:
    """Base URL of the session's Unleash (a test that stops it starts it again before it ends)."""
    return unleash_server.url


def admin_call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One admin API call that must succeed."""
    response = http.request(method, path, **kwargs)
    assert response.is_success, f"{method} {path} -> {response.status_code} {response.text}"
    return response


def create_flag(http: httpx.Client, name: str, *tags: tuple[str, str]) -> None:
    """A release flag in project `default`, carrying `tags`."""
    admin_call(http, "POST", "/api/admin/projects/default/features", json={"name": name, "type": "release"})
    for tag_type, value in tags:
        admin_call(http, "POST", f"/api/admin/features/{name}/tags", json={"type": tag_type, "value": value})


def remote_enabled(http: httpx.Client, feature: str, environment: str) -> bool:
    """Whether `feature` is on in `environment`, as Unleash's admin API says."""
    response = http.get(f"/api/admin/projects/default/features/{feature}")
    assert response.status_code == 200, response.text
    states = {env["name"]: env["enabled"] for env in response.json()["environments"]}
    return bool(states[environment])
