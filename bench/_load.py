"""Load generators for the benchmarks: wrk when installed, else a lean asyncio HTTP/1.1 client.

Both hold `connections` keep-alive connections, each sending the same POST back to back (closed loop),
for a warm-up period (discarded) and then a measured period, and report requests/s, p50, p99 and
errors (transport errors plus non-2xx answers). The fallback runs in its own process
(`python -m bench._load …`) so it never shares an event loop with a server; it costs more CPU per
request than wrk, which on a small machine lowers every figure measured with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_load(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    duration: float,
    warmup: float,
    tool: str,
    method: str = "POST",
    paths: list[str] | None = None,
    numbered_header: str | None = None,
) -> LoadResult:
    """Warm up for `warmup` s (discarded), then measure for `duration` s with `tool` ("wrk" or "python").

    With `paths`, `url` is the server root and the requests cycle through `paths` in order (all
    connections share one cycle), e.g. Unleash toggles that each change a flag. With `numbered_header`,
    every request carries that header with a value no other request of the run has (a random prefix and
    a counter), e.g. an `Idempotency-Key`.
    """
    kwargs = {
        "body": body,
        "headers": headers,
        "connections": connections,
        "method": method,
        "paths": paths,
        "numbered_header": numbered_header,
    }
    if tool == "wrk":
        if warmup > 0:
            _wrk(url, duration=warmup, **kwargs)  # type: ignore[arg-type]
        return _wrk(url, duration=duration, **kwargs)  # type: ignore[arg-type]
    return _python(url, duration=duration, warmup=warmup, **kwargs)  # type: ignore[arg-type]


_WRK_SCRIPT = """
wrk.method = {method}
wrk.body = {body}
{headers}
{paths}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.1f %.1f %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


_WRK_NUMBERED = """
numbered = 0
prefix = {prefix}
request = function()
  numbered = numbered + 1
  wrk.headers[ {name} ] = prefix .. numbered
  return wrk.format()
end
"""

_WRK_PATHS = """
paths = {{ {items} }}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, paths[(counter % #paths) + 1])
end
"""


def _wrk(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    duration: float,
    method: str = "POST",
    paths: list[str] | None = None,
    numbered_header: str | None = None,
) -> LoadResult:
    if paths and numbered_header:
        raise ValueError("paths and numbered_header cannot be combined")
    request = ""
    if paths:
        request = _WRK_PATHS.format(items=", ".join(_lua_string(p) for p in paths))
    elif numbered_header:
        request = _WRK_NUMBERED.format(
            prefix=_lua_string(f"{secrets.token_hex(6)}-"), name=_lua_string(numbered_header)
        )
    script = _WRK_SCRIPT.format(
        method=_lua_string(method),
        paths=request,
        body=_lua_string(body.decode()) if body else "nil",
        headers="\n".join(f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()),
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        script_path = handle.name
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                script_path,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=True,
        )
    finally:
        Path(script_path).unlink(missing_ok=True)
    line = next((line for line in completed.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {completed.stdout} {completed.stderr}")
    requests, duration_us, p50_us, p99_us, errors = line.split()[1:]
    seconds = int(duration_us) / 1e6
    return LoadResult(
        tool="wrk",
        requests=int(requests),
        seconds=seconds,
        rps=int(requests) / seconds,
        p50_ms=float(p50_us) / 1000,
        p99_ms=float(p99_us) / 1000,
        errors=int(errors),
    )


def _python(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    duration: float,
    warmup: float,
    method: str = "POST",
    paths: list[str] | None = None,
    numbered_header: str | None = None,
) -> LoadResult:
    command = [
        sys.executable,
        "-m",
        "bench._load",
        "--url",
        url,
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--body",
        body.decode(),
        "--headers",
        json.dumps(headers),
        "--method",
        method,
        "--paths",
        json.dumps(paths or []),
        "--numbered-header",
        numbered_header or "",
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + warmup + 120, check=True
    )
    return LoadResult(**json.loads(completed.stdout.strip().splitlines()[-1]))


# --- the asyncio fallback (runs in its own process) ----------------------------------------------------


async def _connection_loop(
    host: str,
    port: int,
    requests: list[bytes],
    cursor: list[int],
    stop_at: float,
    measure_from: float,
    latencies: list[float],
    counters: list[int],
    numbered: tuple[bytes, bytes] | None = None,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return
            cursor[0] += 1
            if numbered is None:
                writer.write(requests[cursor[0] % len(requests)])
            else:  # the head up to the numbered header's value, the number, the rest
                writer.write(numbered[0] + str(cursor[0]).encode() + numbered[1])
            status_line = await reader.readline()
            length = 0
            chunked = False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:  # Unleash answers some calls chunked: read through the last chunk and its trailer
                while True:
                    size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            if not status_line:
                raise ConnectionError("server closed the connection")
            finished = time.perf_counter()
            if started >= measure_from:
                latencies.append(finished - started)
                if not status_line.split(b" ", 2)[1].startswith(b"2"):
                    counters[0] += 1
    except (OSError, asyncio.IncompleteReadError, ConnectionError):
        counters[0] += 1
    finally:
        writer.close()


async def _python_main(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    duration: float,
    warmup: float,
    method: str = "POST",
    paths: list[str] | None = None,
    numbered_header: str | None = None,
) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80

    def build_with(target: str, extra: dict[str, str]) -> bytes:
        head = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in {**headers, **extra}.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    def build(target: str) -> bytes:
        return build_with(target, {})

    target = parts.path + (f"?{parts.query}" if parts.query else "")
    requests = [build(p) for p in paths] if paths else [build(target)]
    numbered: tuple[bytes, bytes] | None = None
    if numbered_header:
        marker = "\x00"
        template = build_with(target, {numbered_header: f"{secrets.token_hex(6)}-{marker}"})
        before, _, after = template.partition(marker.encode())
        numbered = (before, after)
    cursor = [0]
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    latencies: list[float] = []
    counters = [0]
    await asyncio.gather(
        *(
            _connection_loop(
                host, port, requests, cursor, stop_at, measure_from, latencies, counters, numbered
            )
            for _ in range(connections)
        )
    )
    latencies.sort()
    count = len(latencies)

    def pct(q: float) -> float:
        return latencies[min(count - 1, int(q * count))] * 1000 if count else 0.0

    return LoadResult(
        tool="python-asyncio",
        requests=count,
        seconds=duration,
        rps=count / duration,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        errors=counters[0],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="closed-loop HTTP/1.1 POST load (wrk fallback)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--body", default="{}")
    parser.add_argument("--headers", default="{}")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--paths", default="[]", help="JSON list of paths to cycle through (url = root)")
    parser.add_argument("--numbered-header", default="", help="a header with a unique value per request")
    args = parser.parse_args()
    coroutine = _python_main(
        args.url,
        body=args.body.encode(),
        headers=json.loads(args.headers),
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        method=args.method,
        paths=json.loads(args.paths) or None,
        numbered_header=args.numbered_header or None,
    )
    try:
        import uvloop

        result = uvloop.run(coroutine)
    except ImportError:
        result = asyncio.run(coroutine)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
