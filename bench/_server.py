"""Benchmark servers: the trivial POST ceiling app, and helpers to run servers as subprocesses.

`python -m bench._server --port N` serves `trivial_app` with the same uvicorn settings as
`switchman serve` (one process, uvloop/httptools when installed, no access log): a route that reads
the request body and answers `{"ok":true}` — the most a durable ingestion route could hope to reach
on the same stack.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TRIVIAL_PATH = "/api/trivial"


async def _trivial(request: Request) -> Response:
    await request.body()
    return Response(b'{"ok":true}', media_type="application/json")


async def _health(_request: Request) -> Response:
    return Response(b'{"health":"GOOD"}', media_type="application/json")


trivial_app = Starlette(
    routes=[Route(TRIVIAL_PATH, _trivial, methods=["POST"]), Route("/health", _health, methods=["GET"])]
)


def _serve_trivial(host: str, port: int) -> None:
    import uvicorn

    # Mirrors switchman.cli._serve.
    config = uvicorn.Config(
        trivial_app,
        host=host,
        port=port,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


@contextlib.contextmanager
def running(
    cmd: list[str], *, env: Mapping[str, str], ready_url: str, timeout: float = 60.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `cmd`, wait until `ready_url` answers 200, yield the process; always stop it afterwards."""
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"server exited with {proc.returncode}: {err.strip()[-2000:]}")
            try:
                if httpx.get(ready_url, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout} s: {ready_url}")
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGINT (uvicorn's graceful shutdown: lifespan stop runs), then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def trivial_command(port: int) -> list[str]:
    return [sys.executable, "-m", "bench._server", "--port", str(port)]


def main() -> None:
    parser = argparse.ArgumentParser(description="serve the trivial POST ceiling app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _serve_trivial(args.host, args.port)


if __name__ == "__main__":
    main()
