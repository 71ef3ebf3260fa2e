"""Benchmark reporting: one `## Section` of docs/benchmarks.md per module, and its JSON results.

Every benchmark module (`python -m bench.<module>`) writes
- its own `## …` section of docs/benchmarks.md through `write_section` (other sections untouched), and
- `bench/out/<module>.json` through `write_results`, the machine-readable form the suite's summary
  (`python -m bench.suite`, `make bench`) is built from:

      {"module": str, "command": str, "started_at": ISO str, "machine": str,
       "load_average": [1 min, 5 min, 15 min] at writing time,
       "rows": [{"comparison": str, "figure": str, "value": float, "unit": str,
                 "goal": str | null, "met": bool | null}]}

  `comparison` names the issue's comparison (e.g. "1 ingestion vs ceiling"), `figure` says what was
  measured (e.g. "postgresql durable / ceiling"); `goal` is the goal as text ("≥ 70%") and `met` whether
  this figure meets it (null when the row is context, not a goal).
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"
OUT_DIR = ROOT / "bench" / "out"


def write_section(heading: str, text: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the section that starts with the line `heading` (up to the next `## `), or append it."""
    current = path.read_text() if path.exists() else "# Benchmarks\n\n"
    lines = current.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        updated = "".join(lines[:start]) + text.rstrip("\n") + "\n\n" + "".join(lines[end:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated.rstrip("\n") + "\n")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (fraction in [0, 1])."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


# --- machine-readable results (bench/out/<module>.json) -------------------------------------------------


# The comparisons, as the `comparison` field of result rows (the summary groups by these).
C1_INGEST_CEILING = "1 ingestion vs ceiling"
C2_INGEST_UNLEASH = "2 ingestion vs Unleash"
C3_LISTING_UNLEASH = "3 history listing vs Unleash"
C4_LATENCY = "4 signal→flag latency"
C5_SCALEOUT = "5 scale-out on PostgreSQL"
C6_MEMORY = "6 memory"


@dataclass(frozen=True)
class ResultRow:
    """One figure of a benchmark run."""

    comparison: str
    figure: str
    value: float
    unit: str
    goal: str | None = None
    met: bool | None = None


def now_iso() -> str:
    """The current time as an ISO 8601 UTC string (seconds precision), for `started_at`."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def machine_description() -> str:
    """CPU model, logical CPUs, OS and Python version: the `machine` field of the results."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    memory = ""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        memory = f", {kib / 1024 / 1024:.1f} GiB RAM"
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def write_results(
    module: str,
    command: str,
    started_at: str,
    rows: list[ResultRow],
    *,
    extra: dict[str, Any] | None = None,
    out_dir: Path = OUT_DIR,
) -> Path:
    """Write `bench/out/<module>.json` (format in the module docstring); returns the path.

    `module` is the short name (`ingest` for `bench.ingest`); `extra` adds module-specific keys
    (never one of the fixed keys).
    """
    document: dict[str, Any] = {
        "module": module,
        "command": command,
        "started_at": started_at,
        "machine": machine_description(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "rows": [asdict(row) for row in rows],
    }
    for key, value in (extra or {}).items():
        if key in document:
            raise ValueError(f"extra key {key!r} would replace a fixed key")
        document[key] = value
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{module}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    return path


def read_results(module: str, out_dir: Path = OUT_DIR) -> dict[str, Any] | None:
    """The parsed `bench/out/<module>.json`, or None when the module has not written one."""
    path = out_dir / f"{module}.json"
    if not path.exists():
        return None
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    return document
