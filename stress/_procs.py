"""Processes for the stress scripts: real `switchman serve` / `switchman worker` subprocesses and a
private PostgreSQL cluster, all on free loopback ports, all stopped on exit (also on failure).

Every process's stdout and stderr go to a log file in the run's temporary directory, so that a check
can read them afterwards (deadlocks, tracebacks) and a failed run can be inspected.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx

ADMIN_SECRET = "*:*.stress-admin-secret"
PG_SERVER = os.environ.get("SWITCHMAN_STRESS_PG", "postgresql://postgres@127.0.0.1:5432")
PG_BIN = Path(os.environ.get("SWITCHMAN_STRESS_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    """Settings shared by every switchman process of a stress run (overridable per process)."""
    env = {
        "SWITCHMAN_DATABASE_URL": database_url,
        "SWITCHMAN_INIT_ADMIN_API_TOKENS": ADMIN_SECRET,
        "SWITCHMAN_LOG_LEVEL": "INFO",
        "SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND": "0",
        "SWITCHMAN_SIGNAL_RETENTION_DAYS": "0",
        # A killed worker's leases (if any survived its rolled-back transaction) are retaken quickly.
        "SWITCHMAN_WORKER_LEASE_SECONDS": "3",
        "SWITCHMAN_WORKER_POLL_INTERVAL_SECONDS": "0.5",
        "SWITCHMAN_DATABASE_POOL_SIZE": "5",
    }
    env.update(extra)
    return env


class Proc:
    """One switchman subprocess (or any command) with its own log file."""

    def __init__(self, name: str, cmd: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        assert self.popen is None or self.popen.poll() is not None, f"{self.name} is already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start #{self.starts} {time.strftime('%H:%M:%S')} ===\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def stop(self, grace: float = 15.0) -> None:
        """SIGINT (graceful: uvicorn's lifespan stop runs), SIGKILL after `grace` seconds."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def switchman_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "switchman", *args]


class Server(Proc):
    """`switchman serve` on a free port."""

    def __init__(
        self, name: str, env: Mapping[str, str], log_dir: Path, *, worker: bool = True, port: int = 0
    ) -> None:
        self.port = port or free_port()
        args = ["serve", "--port", str(self.port)] + ([] if worker else ["--no-worker"])
        super().__init__(name, switchman_cmd(*args), env, log_dir)
        self.url = f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if not self.alive():
                    raise RuntimeError(f"{self.name} exited: {self.log_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready after {timeout} s")
                await asyncio.sleep(0.1)


class Worker(Proc):
    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path) -> None:
        super().__init__(name, switchman_cmd("worker"), env, log_dir)

    async def wait_ready(self, timeout: float = 90.0) -> None:
        """Until this start's process logged that its worker loop runs."""
        deadline = time.monotonic() + timeout
        while self.log_text().rsplit("=== start #", 1)[-1].count(" started") < 1:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited: {self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout} s")
            await asyncio.sleep(0.1)


class Processes:
    """Every process a script starts; `stop_all()` (always called by `run_dir`) ends them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.all: list[Proc] = []

    def server(self, name: str, env: Mapping[str, str], *, worker: bool = True) -> Server:
        proc = Server(name, env, self.log_dir, worker=worker)
        self.all.append(proc)
        return proc

    def worker(self, name: str, env: Mapping[str, str]) -> Worker:
        proc = Worker(name, env, self.log_dir)
        self.all.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.all:
            try:
                proc.stop(grace=10.0)
            except Exception:  # never leave others running because one refused to stop
                proc.kill9()


@contextlib.contextmanager
def run_dir(
    prefix: str, keep: bool = bool(os.environ.get("SWITCHMAN_STRESS_KEEP"))
) -> Iterator[tuple[Path, Processes]]:
    """A temporary directory for databases and logs, and the process registry; both cleaned up."""
    path = Path(tempfile.mkdtemp(prefix=f"switchman-stress-{prefix}-"))
    procs = Processes(path)
    ok = False
    try:
        yield path, procs
        ok = True
    finally:
        procs.stop_all()
        if ok and not keep:
            shutil.rmtree(path, ignore_errors=True)
        elif not ok:
            print(f"  (logs kept in {path})", file=sys.stderr)


# --- PostgreSQL -----------------------------------------------------------------------------------------


async def _pg_admin(server: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def throwaway_database(server: str = PG_SERVER) -> AsyncIterator[str]:
    """A fresh database on the shared server (never restarted by us); dropped afterwards."""
    name = f"switchman_stress_{uuid.uuid4().hex[:10]}"
    await _pg_admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with contextlib.suppress(Exception):
            await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PrivateCluster:
    """Our own PostgreSQL cluster (initdb in a temp dir, a free port): ours to stop and restart.

    The machine's shared PostgreSQL is never touched.
    """

    def __init__(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="switchman-stress-pg-"))
        root.chmod(0o755)
        self.root = root
        self.data = root / "pgdata"
        self.sock = root / "pgsock"
        self.port = free_port()
        self.log = root / "postgres.log"
        self.server = f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.sock.mkdir(parents=True, exist_ok=True)
        cmd = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"]
        if os.geteuid() == 0:
            # initdb refuses to run as root; run it (and the server) as the `postgres` system user.
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        self._run(*cmd)

    def _pg_ctl(self, *args: str) -> list[str]:
        cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(*self._pg_ctl("-o", options, "-l", str(self.log), "-w", "-t", "60", "start"))

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(*self._pg_ctl("-m", mode, "-w", "-t", "60", "stop"))

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    async def create_database(self, name: str = "switchman") -> str:
        await _pg_admin(self.server, f'CREATE DATABASE "{name}"')
        return f"{self.server}/{name}"
