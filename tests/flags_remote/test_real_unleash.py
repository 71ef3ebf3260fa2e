"""UnleashFlagBackend against a real Unleash OSS 8.2.0 server, checked through Unleash's own API and event log.

One server for the module: installed by `shared/tools/unleash-oss.sh` into `<repo>/.cache/unleash-oss`
(git-ignored; reused when present; `SWITCHMAN_TEST_UNLEASH_DIR` may point elsewhere), started on a free
port with a throw-away PostgreSQL database, stopped and dropped at the end. It runs by default: when npm,
the script, PostgreSQL or the install is missing, the tests FAIL with the reason instead of skipping.
The system Node is used unless `UNLEASH_NODE_VERSION` says otherwise (8.2.0 declares Node >= 22 but runs
these exchanges on Node 20; see the shared spec, real-server §1).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchman.auth.permissions import EDITOR_ROLE_ID, VIEWER_ROLE_ID, permissions_of_role
from switchman.auth.principal import Principal, PrincipalKind
from switchman.flags.backend import FlagActionError, TagToggleReport
from switchman.flags.unleash import UnleashFlagBackend
from tests.conftest import PG_SERVER, REPO_ROOT

SCRIPT = REPO_ROOT.parent / "shared" / "tools" / "unleash-oss.sh"
INSTALL_DIR = Path(os.environ.get("SWITCHMAN_TEST_UNLEASH_DIR") or REPO_ROOT / ".cache" / "unleash-oss")
ADMIN_TOKEN = "*:*.unleash-insecure-admin-api-token"
CLIENT_TOKEN = "default:development.unleash-insecure-api-token"
ADMIN_TOKEN_USER_ID = -42  # Unleash's user for admin API tokens: the author of every remote change

EDITOR = Principal(
    kind=PrincipalKind.SERVICE_ACCOUNT,
    user_id=5,
    username="incident-bot",
    permissions=permissions_of_role(EDITOR_ROLE_ID),
    root_role=EDITOR_ROLE_ID,
)
VIEWER = Principal(
    kind=PrincipalKind.SERVICE_ACCOUNT,
    user_id=6,
    username="read-only-bot",
    permissions=permissions_of_role(VIEWER_ROLE_ID),
    root_role=VIEWER_ROLE_ID,
)

TAG = ("simple", "kill-switch")
COLON_TAG = ("simple", "team:payments")


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


def _free_port() -> int:
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


@pytest.fixture(scope="module")
def unleash_url() -> Iterator[str]:
    """Base URL of a running Unleash OSS server with its own fresh database."""
    _install_once()
    port = _free_port()
    database = f"switchman_unleash_{secrets.token_hex(4)}"
    try:
        started = _run_script("start", str(INSTALL_DIR), str(port), database, timeout=180)
        if started.returncode != 0:
            pytest.fail(f"starting Unleash OSS failed:\n{started.stderr[-3000:]}")
        pid = started.stdout.strip().splitlines()[-1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            _run_script("stop", pid, timeout=60)
            (INSTALL_DIR / f"unleash-{port}.log").unlink(missing_ok=True)
    finally:
        # In a thread of its own: asyncio.run must not touch the test session's event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, _drop_database(database)).result()


def _admin_call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = http.request(method, path, **kwargs)
    assert response.is_success, f"{method} {path} -> {response.status_code} {response.text}"
    return response


@pytest.fixture(scope="module")
def flags(unleash_url: str) -> dict[str, str]:
    """Flags created through Unleash's admin API, by role."""
    names = {
        "single": "checkout-v2",
        "tagged_a": "payments-a",
        "tagged_b": "payments-b",
        "other_tag": "search-v3",
        "archived": "legacy-tagged",
        "colon": "colon-tagged",
    }
    with httpx.Client(base_url=unleash_url, headers={"Authorization": ADMIN_TOKEN}, timeout=30) as http:
        for name in names.values():
            _admin_call(
                http, "POST", "/api/admin/projects/default/features", json={"name": name, "type": "release"}
            )
        for key in ("tagged_a", "tagged_b", "archived"):
            _admin_call(
                http, "POST", f"/api/admin/features/{names[key]}/tags", json={"type": TAG[0], "value": TAG[1]}
            )
        _admin_call(
            http,
            "POST",
            f"/api/admin/features/{names['other_tag']}/tags",
            json={"type": "simple", "value": "other"},
        )
        _admin_call(
            http,
            "POST",
            f"/api/admin/features/{names['colon']}/tags",
            json={"type": COLON_TAG[0], "value": COLON_TAG[1]},
        )
        _admin_call(http, "DELETE", f"/api/admin/projects/default/features/{names['archived']}")
    return names


@pytest.fixture
async def remote(unleash_url: str) -> AsyncIterator[UnleashFlagBackend]:
    backend = UnleashFlagBackend(unleash_url, ADMIN_TOKEN, timeout=10.0)
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def admin(unleash_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=unleash_url, headers={"Authorization": ADMIN_TOKEN}, timeout=30
    ) as http:
        yield http


async def enabled_in(admin: httpx.AsyncClient, feature: str, environment: str) -> bool:
    response = await admin.get(f"/api/admin/projects/default/features/{feature}")
    assert response.status_code == 200, response.text
    states = {env["name"]: env["enabled"] for env in response.json()["environments"]}
    return bool(states[environment])


async def events_of(admin: httpx.AsyncClient, feature: str) -> list[dict[str, Any]]:
    """The feature's audit events, oldest first."""
    response = await admin.get(f"/api/admin/events/{feature}")
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["events"]))


async def test_on_and_off_change_the_flag_and_land_in_unleash_event_log(
    remote: UnleashFlagBackend, admin: httpx.AsyncClient, flags: dict[str, str]
) -> None:
    name = flags["single"]
    assert not await enabled_in(admin, name, "production")

    await remote.set_enabled(
        actor=EDITOR, project="default", environment="production", feature_name=name, enabled=True
    )
    assert await enabled_in(admin, name, "production")
    assert not await enabled_in(admin, name, "development")
    events = await events_of(admin, name)
    assert [e["type"] for e in events][-2:] == ["feature-strategy-add", "feature-environment-enabled"]
    enabled_event = events[-1]
    assert enabled_event["environment"] == "production"
    assert enabled_event["project"] == "default"
    # The remote audit names switchman's token user, not the acting service account (ADR 0007).
    assert enabled_event["createdByUserId"] == ADMIN_TOKEN_USER_ID

    # Turning on a flag that is on is a success and Unleash records nothing.
    await remote.set_enabled(
        actor=EDITOR, project="default", environment="production", feature_name=name, enabled=True
    )
    assert len(await events_of(admin, name)) == len(events)

    await remote.set_enabled(
        actor=EDITOR, project="default", environment="production", feature_name=name, enabled=False
    )
    assert not await enabled_in(admin, name, "production")
    last = (await events_of(admin, name))[-1]
    assert (last["type"], last["environment"]) == ("feature-environment-disabled", "production")


async def test_by_tag_toggles_only_live_flags_carrying_the_tag(
    remote: UnleashFlagBackend, admin: httpx.AsyncClient, flags: dict[str, str]
) -> None:
    report = await remote.set_enabled_by_tag(
        actor=EDITOR,
        project="default",
        environment="development",
        tag_type=TAG[0],
        tag_value=TAG[1],
        enabled=True,
    )
    assert report == TagToggleReport(features=tuple(sorted((flags["tagged_a"], flags["tagged_b"]))))
    assert await enabled_in(admin, flags["tagged_a"], "development")
    assert await enabled_in(admin, flags["tagged_b"], "development")
    assert not await enabled_in(admin, flags["tagged_a"], "production")
    assert not await enabled_in(admin, flags["other_tag"], "development")
    archived_types = [e["type"] for e in await events_of(admin, flags["archived"])]
    assert "feature-environment-enabled" not in archived_types
    assert "feature-archived" in archived_types

    report = await remote.set_enabled_by_tag(
        actor=EDITOR,
        project="default",
        environment="development",
        tag_type=TAG[0],
        tag_value=TAG[1],
        enabled=False,
    )
    assert len(report.features) == 2
    for key in ("tagged_a", "tagged_b"):
        assert not await enabled_in(admin, flags[key], "development")
        last = (await events_of(admin, flags[key]))[-1]
        assert (last["type"], last["environment"]) == ("feature-environment-disabled", "development")


async def test_by_tag_value_with_a_colon_works_despite_unleash_filter(
    remote: UnleashFlagBackend, admin: httpx.AsyncClient, flags: dict[str, str]
) -> None:
    # Unleash 8.2 answers 500 to `?tag=simple:team:payments`; the backend matches such tags itself.
    broken = await admin.get("/api/admin/projects/default/features", params={"tag": ":".join(COLON_TAG)})
    assert broken.status_code == 500
    report = await remote.set_enabled_by_tag(
        actor=EDITOR,
        project="default",
        environment="production",
        tag_type=COLON_TAG[0],
        tag_value=COLON_TAG[1],
        enabled=True,
    )
    assert report == TagToggleReport(features=(flags["colon"],))
    assert await enabled_in(admin, flags["colon"], "production")


async def test_by_tag_without_tagged_flags_is_success_unless_project_unknown(
    remote: UnleashFlagBackend, flags: dict[str, str]
) -> None:
    report = await remote.set_enabled_by_tag(
        actor=EDITOR,
        project="default",
        environment="production",
        tag_type="simple",
        tag_value="nobody",
        enabled=True,
    )
    assert report == TagToggleReport(features=())
    with pytest.raises(FlagActionError) as caught:
        await remote.set_enabled_by_tag(
            actor=EDITOR,
            project="payments",
            environment="production",
            tag_type=TAG[0],
            tag_value=TAG[1],
            enabled=True,
        )
    assert str(caught.value) == 'Could not find project with id "payments" on the Unleash server.'


async def test_by_tag_in_unknown_environment_lists_every_failed_flag(
    remote: UnleashFlagBackend, flags: dict[str, str]
) -> None:
    with pytest.raises(FlagActionError) as caught:
        await remote.set_enabled_by_tag(
            actor=EDITOR,
            project="default",
            environment="staging",
            tag_type=TAG[0],
            tag_value=TAG[1],
            enabled=True,
        )
    a, b = sorted((flags["tagged_a"], flags["tagged_b"]))
    assert str(caught.value) == (
        f"Could not turn on 2 of 2 flags tagged {TAG[0]}:{TAG[1]} in staging "
        f"({a}: Could not find environment staging for feature: {a}; "
        f"{b}: Could not find environment staging for feature: {b})"
    )


@pytest.mark.parametrize(
    ("feature", "environment", "message"),
    [
        ("does-not-exist", "production", 'There\'s no feature named "does-not-exist" in project "default".'),
        ("a/../b", "production", 'There\'s no feature named "a/../b" in project "default".'),
        ("..", "production", 'There\'s no feature named ".." in project "default".'),
        ("checkout-v2", "nope", "Could not find environment nope for feature: checkout-v2"),
    ],
)
async def test_unleash_not_found_messages_become_the_failure(
    remote: UnleashFlagBackend, flags: dict[str, str], feature: str, environment: str, message: str
) -> None:
    with pytest.raises(FlagActionError) as caught:
        await remote.set_enabled(
            actor=EDITOR, project="default", environment=environment, feature_name=feature, enabled=True
        )
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (
            "*:*.not-the-right-secret",
            "The Unleash server refused switchman's API token (HTTP 401): You must log in to use Unleash.",
        ),
        (
            CLIENT_TOKEN,
            "The Unleash server refused switchman's API token (HTTP 403): "
            "invalid token: expected a different token type for this endpoint",
        ),
    ],
)
async def test_refused_token_is_reported_without_the_token(
    unleash_url: str, flags: dict[str, str], token: str, message: str
) -> None:
    backend = UnleashFlagBackend(unleash_url, token, timeout=10.0)
    try:
        with pytest.raises(FlagActionError) as caught:
            await backend.set_enabled(
                actor=EDITOR,
                project="default",
                environment="production",
                feature_name=flags["single"],
                enabled=True,
            )
    finally:
        await backend.close()
    assert str(caught.value) == message
    assert token not in str(caught.value)


async def test_viewer_changes_nothing_on_the_server(
    remote: UnleashFlagBackend, admin: httpx.AsyncClient, flags: dict[str, str]
) -> None:
    name = flags["other_tag"]
    before = await events_of(admin, name)
    with pytest.raises(FlagActionError, match='"UPDATE_FEATURE_ENVIRONMENT" permission'):
        await remote.set_enabled(
            actor=VIEWER, project="default", environment="production", feature_name=name, enabled=True
        )
    assert not await enabled_in(admin, name, "production")
    assert await events_of(admin, name) == before
