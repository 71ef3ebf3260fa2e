"""A real Unleash OSS 8.2.0 server for the whole test session (pytest plugin, see tests/conftest.py).

One server per session, shared by the backend tests (tests/flags_remote) and the end-to-end suite
(tests/integration): installed by `devtools.unleash_oss` into `<repo>/.cache/unleash-oss` (git-ignored;
reused when present; `SWITCHMAN_TEST_UNLEASH_DIR` may point elsewhere), started on a free port with a
throw-away PostgreSQL database, stopped and the database dropped at the end of the session. It is only
started when a test asks for it. Requirements: npm and Node >= 20 (the system Node runs it; 8.2.0 declares
Node >= 22 but everything these tests exchange with it works on 20). When they are missing the tests
FAIL under `CI` and are skipped with the reason elsewhere, the rule the PostgreSQL fixture follows; a
failed install or start always fails.

Tests share the server, so each one creates flags with names of its own (`tests.conftest.unique`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools import unleash_oss
from tests.conftest import PG_SERVER, REPO_ROOT

INSTALL_DIR = Path(os.environ.get("SWITCHMAN_TEST_UNLEASH_DIR") or REPO_ROOT / ".cache" / "unleash-oss")
ADMIN_TOKEN = unleash_oss.ADMIN_TOKEN
CLIENT_TOKEN = unleash_oss.CLIENT_TOKENS[0]  # a backend (SDK) token for development
PRODUCTION_CLIENT_TOKEN = unleash_oss.CLIENT_TOKENS[1]
ADMIN_TOKEN_USER_ID = -42  # Unleash's user for admin API tokens: the author of every remote change


def _install_once() -> None:
    """Install Unleash OSS into INSTALL_DIR unless present: skip (fail under CI) when npm or Node is missing."""
    if unleash_oss.is_installed(INSTALL_DIR):
        return
    problem = unleash_oss.requirements_problem()
    if problem is not None:
        message = f"the real-Unleash tests cannot run: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        unleash_oss.install(INSTALL_DIR, unleash_oss.NodeChoice.SYSTEM)
    except unleash_oss.UnleashOssError as exc:
        pytest.fail(f"installing Unleash OSS into {INSTALL_DIR} failed: {exc}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class UnleashServer:
    """A running Unleash OSS process on its own port and database; `stop()`/`start()` keep both."""

    port: int
    database: str
    process: unleash_oss.UnleashProcess | None = field(default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (again) on the same port and database; waits for /health."""
        assert self.process is None, "already running"
        try:
            self.process = unleash_oss.start(
                INSTALL_DIR, port=self.port, database=self.database, pg_url=PG_SERVER
            )
        except unleash_oss.UnleashOssError as exc:
            pytest.fail(f"starting Unleash OSS failed: {exc}")

    def stop(self) -> None:
        """Stop the server process (SIGTERM, SIGKILL after 15 s); its port then refuses connections."""
        if self.process is not None:
            unleash_oss.stop(self.process)
            self.process.log_file.unlink(missing_ok=True)
            self.process = None

    def admin(self) -> httpx.Client:
        """A synchronous client of the admin API with the bootstrap admin token."""
        return httpx.Client(base_url=self.url, headers={"Authorization": ADMIN_TOKEN}, timeout=30)


@pytest.fixture(scope="session")
def unleash_server() -> Iterator[UnleashServer]:
    """The session's Unleash OSS server (started on first use)."""
    _install_once()
    server = UnleashServer(port=free_port(), database=f"switchman_unleash_{os.urandom(4).hex()}")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        unleash_oss.drop_database(PG_SERVER, server.database)


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


def create_flag_on(http: httpx.Client, name: str, *environments: str) -> None:
    """A release flag in project `default`, turned on in each of `environments`."""
    create_flag(http, name)
    for environment in environments:
        admin_call(http, "POST", f"/api/admin/projects/default/features/{name}/environments/{environment}/on")


def remote_enabled(http: httpx.Client, feature: str, environment: str) -> bool:
    """Whether `feature` is on in `environment`, as Unleash's admin API says."""
    response = http.get(f"/api/admin/projects/default/features/{feature}")
    assert response.status_code == 200, response.text
    states = {env["name"]: env["enabled"] for env in response.json()["environments"]}
    return bool(states[environment])
