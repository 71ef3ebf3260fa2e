"""`make bench`: every benchmark module in sequence, peak RSS of every switchman process, one summary.

    make bench                     # = python -m bench.suite
    python -m bench.suite [--quick] [--only ingest,memory] [--skip scaleout]

1. Tools: `wrk` (installed with apt-get when missing and this runs as root; else the modules fall back
   to their asyncio load client, noted in the results) and Unleash OSS (`bench._unleash`: installed into
   the git-ignored `.cache/unleash-oss-node22` unless `SWITCHMAN_BENCH_UNLEASH_DIR` points elsewhere).
2. The modules, one after the other, each as its own process with a time budget (killed when over it,
   reported as failed): ingest (comparisons 1, 2), events_listing (3), latency (4), backtest (7), console
   pages (8), scaleout (5),
   sdk_propagation (when present) and memory (6: a 5-minute steady load). Each writes its own section of
   docs/benchmarks.md and bench/out/<module>.json; its output goes to bench/out/<module>.log.
3. All along, a sampler reads VmHWM (peak RSS) of every `switchman serve` / `switchman worker` process
   started under this suite (descendants of this process only) — comparison 6's peak per process.
4. The `## Summary (make bench, <date>)` section at the top of docs/benchmarks.md, built from the JSON files
   written in this run, with the machine and its load average; bench/out/suite.json.
Exit status: non-zero when a module failed or ran over its budget (the summary is written anyway).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._report import (
    BENCHMARKS_MD,
    C6_MEMORY,
    OUT_DIR,
    ROOT,
    ResultRow,
    machine_description,
    now_iso,
    read_results,
    write_results,
)

SUMMARY_PREFIX = "## Summary"
PEAK_GOAL_MB = 150.0
# The whole suite's target: 22.5 minutes on the quiet 2-core machine of 2026-12-04 (nine modules; the
# default configuration's three rounds and the memory module's five-minute steady load are most of it).
SUITE_MINUTES = 25


@dataclass(frozen=True)
class Module:
    name: str  # bench.<name>, bench/out/<name>.json
    budget: float  # seconds
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    optional: bool = False  # run only when the module exists
    accepts_no_write: bool = False  # passes the suite's --no-write on (modules known to take it)


# Budgets are timeouts (a module over its budget is stopped and reported); the whole suite should stay under
# SUITE_MINUTES on a quiet 2-core machine — the summary states the time taken and flags it when over.
MODULES = (
    Module("ingest", 200, args=("--rounds", "2"), accepts_no_write=True),
    Module("default_config", 420, args=("--rounds", "3"), accepts_no_write=True),
    Module("events_listing", 330, args=("--databases", "postgresql"), accepts_no_write=True),
    Module("latency", 240, accepts_no_write=True),
    Module("backtest", 120, accepts_no_write=True),
    Module("console", 300, accepts_no_write=True),
    Module("scaleout", 450, accepts_no_write=True),
    Module("sdk_propagation", 150, quick_args=("--toggles", "5"), optional=True, accepts_no_write=True),
    Module("memory", 480, accepts_no_write=True),
)


# --- peak RSS sampler ---------------------------------------------------------------------------------------


@dataclass
class Peak:
    pid: int
    command: str
    module: str
    hwm_mb: float = 0.0


@dataclass
class RssSampler:
    """Polls the descendants of this process for switchman servers and keeps each one's VmHWM."""

    interval: float = 0.5
    module: str = ""
    peaks: dict[int, Peak] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, name="rss-sampler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a process may vanish between listing and reading
                self.sample()

    def sample(self) -> None:
        children: dict[int, list[int]] = defaultdict(list)
        commands: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                commands[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except (OSError, ValueError):
                continue
            children[ppid].append(int(entry.name))
        stack, seen = [os.getpid()], set()
        while stack:
            pid = stack.pop()
            for child in children.get(pid, ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        for pid in seen:
            command = commands.get(pid, "")
            if not _is_switchman_server(command):
                continue
            hwm = _vm_hwm_mb(pid)
            if hwm is None:
                continue
            peak = self.peaks.get(pid)
            if peak is None:
                peak = self.peaks[pid] = Peak(pid, command.strip(), self.module)
            peak.hwm_mb = max(peak.hwm_mb, hwm)


def _is_switchman_server(command: str) -> bool:
    parts = command.split()
    for i, part in enumerate(parts):
        if part == "switchman" and i + 1 < len(parts) and parts[i + 1] in ("serve", "worker"):
            return True  # python -m switchman serve …
        if part.endswith("/switchman") and i + 1 < len(parts) and parts[i + 1] in ("serve", "worker"):
            return True  # the console script
    return False


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --- tools ----------------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """'wrk' when available (installing it with apt-get as root if missing), else 'python'."""
    if shutil.which("wrk"):
        return "wrk"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: apt-get install -y wrk …", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        installed = subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, check=False
        )
        if installed.returncode != 0:  # the package lists may be missing on a fresh machine
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, check=False
            )
    if shutil.which("wrk"):
        return "wrk"
    print(
        "wrk unavailable: the modules use their asyncio load client (lower figures on a small machine)",
        flush=True,
    )
    return "python"


# --- running the modules ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    module: str
    seconds: float
    status: str  # "ok", "failed (exit N)", "over budget", "skipped"
    command: str


def run_module(module: Module, quick: bool, sampler: RssSampler, *, no_write: bool = False) -> Outcome:
    argv = [sys.executable, "-m", f"bench.{module.name}", *(module.quick_args if quick else module.args)]
    if no_write and module.accepts_no_write:
        argv.append("--no-write")
    command = " ".join(["python", *argv[1:]])
    if module.optional and not (ROOT / "bench" / f"{module.name}.py").exists():
        return Outcome(module.name, 0.0, "skipped (module not present)", command)
    log_path = OUT_DIR / f"{module.name}.log"
    sampler.module = module.name
    print(f"\n=== {command}  (budget {module.budget:.0f} s, log {log_path.relative_to(ROOT)})", flush=True)
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        timer = threading.Timer(module.budget, _terminate, args=(proc,))
        timer.start()
        try:
            for line in proc.stdout:
                log.write(line)
                print(f"  {line}", end="", flush=True)
            proc.wait()
        finally:
            timer.cancel()
    seconds = time.monotonic() - started
    if seconds >= module.budget:
        status = "over budget"
    elif proc.returncode != 0:
        status = f"failed (exit {proc.returncode})"
    else:
        status = "ok"
    print(f"=== {module.name}: {status} in {seconds:.0f} s", flush=True)
    return Outcome(module.name, seconds, status, command)


def _terminate(proc: subprocess.Popen[str]) -> None:
    """Over budget: SIGINT to the module's process group (its servers stop gracefully), then SIGKILL."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# --- the summary ----------------------------------------------------------------------------------------------


def _fmt(value: float, unit: str) -> str:
    if unit in ("req/s", "signals/s"):
        return f"{value:,.0f} {unit}"
    if unit == "%":
        return f"{value:.0f}%"
    if unit == "x":
        return f"{value:.1f}x"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:g} {unit}"


def render_summary(
    documents: list[dict[str, Any]],
    outcomes: list[Outcome],
    *,
    started: datetime,
    finished: datetime,
    load_start: tuple[float, ...],
    load_end: tuple[float, ...],
    tool: str,
    quick: bool,
) -> str:
    rows = [(doc["module"], row) for doc in documents for row in doc["rows"]]
    rows.sort(key=lambda item: item[1]["comparison"])
    goals = [(module, row) for module, row in rows if row.get("goal")]
    met = sum(1 for _, row in goals if row.get("met"))
    lines = [
        f"{SUMMARY_PREFIX} (make bench, {started:%Y-%m-%d})",
        "",
        f"`make bench` (`python -m bench.suite{' --quick' if quick else ''}`), {started:%Y-%m-%d %H:%M} to "
        f"{finished:%H:%M} UTC ({(finished - started).total_seconds() / 60:.1f} min). "
        f"**{met} of {len(goals)} goals met.** Every figure below comes from this run; its command is in the "
        "module's section further down (and in `bench/out/<module>.json`).",
        "",
        f"Machine: {machine_description()}. Load generator: "
        f"{'wrk (1 thread)' if tool == 'wrk' else 'bench._load asyncio client (wrk unavailable)'}, loopback; servers, "
        "databases, Unleash and the load generator share the CPUs. Load average (1/5/15 min) at the start "
        f"{' / '.join(f'{x:.2f}' for x in load_start)}, at the end {' / '.join(f'{x:.2f}' for x in load_end)} "
        "(above ≈0.5 at the start, other work shared the machine and the figures are lower than a quiet run's).",
        "",
        "| comparison | figure | result | goal | met | module |",
        "|---|---|---:|---|---|---|",
    ]
    for module, row in goals:
        mark = "yes" if row["met"] else "**no**"
        lines.append(
            f"| {row['comparison']} | {row['figure']} | {_fmt(row['value'], row['unit'])} | {row['goal']} | {mark} | "
            f"`{module}` |"
        )
    lines += ["", "The figures behind the ratios (same run):", ""]
    by_comparison: dict[str, list[str]] = defaultdict(list)
    for _, row in rows:
        if not row.get("goal"):
            by_comparison[row["comparison"]].append(f"{row['figure']} {_fmt(row['value'], row['unit'])}")
    for comparison, figures in by_comparison.items():
        lines.append(f"- {comparison}: " + "; ".join(figures))
    minutes = (finished - started).total_seconds() / 60
    if minutes > SUITE_MINUTES and outcomes and outcomes[0].seconds > 0:
        lines += [
            "",
            f"**The suite took {minutes:.1f} minutes, over its {SUITE_MINUTES}-minute budget** (see the modules' times).",
        ]
    lines += ["", "| module | status | seconds | command |", "|---|---|---:|---|"]
    for outcome in outcomes:
        lines.append(f"| {outcome.module} | {outcome.status} | {outcome.seconds:.0f} | `{outcome.command}` |")
    lines.append("")
    return "\n".join(lines)


def write_summary_first(text: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the `## Summary…` section, or insert it right after the title."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = current.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(SUMMARY_PREFIX)), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        del lines[start:end]
        insert_at = start
    else:
        insert_at = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    lines[insert_at:insert_at] = [text.rstrip("\n") + "\n\n"]
    path.write_text("".join(lines).rstrip("\n") + "\n")


def summarize_existing(*, no_write: bool) -> None:
    """The summary of whatever results bench/out holds, each from its own run (their dates are listed)."""
    documents = [doc for m in (*MODULES, Module("suite", 0)) if (doc := read_results(m.name)) is not None]
    if not documents:
        raise SystemExit("no results in bench/out; run `make bench` first")
    outcomes = [
        Outcome(doc["module"], 0.0, f"from bench/out, run {doc['started_at']}", doc["command"])
        for doc in documents
    ]
    dates = sorted(doc["started_at"] for doc in documents)
    started = datetime.fromisoformat(dates[0])
    load = tuple(documents[0].get("load_average", (0.0, 0.0, 0.0)))
    summary = render_summary(
        documents,
        outcomes,
        started=started,
        finished=datetime.now(UTC),
        load_start=load,
        load_end=os.getloadavg(),
        tool="wrk" if shutil.which("wrk") else "python",
        quick=False,
    )
    intro = summary.splitlines()[2]
    summary = summary.replace(
        intro,
        f"Rebuilt by `python -m bench.suite --summary-only` at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the "
        "module runs listed at the end (each module's command and date are there and in its section below). "
        + intro[intro.index("**") :]
        .replace(" Every figure below comes from this run;", "")
        .split(" its command")[0],
    )
    print(summary)
    if not no_write:
        write_summary_first(summary)
        print(f"wrote {BENCHMARKS_MD.relative_to(ROOT)} ({SUMMARY_PREFIX})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="every module's --quick smoke run")
    parser.add_argument("--only", default="", help="comma-separated module names to run")
    parser.add_argument("--skip", default="", help="comma-separated module names to leave out")
    parser.add_argument(
        "--no-write", action="store_true", help="leave docs/benchmarks.md alone (summary and module sections)"
    )
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="run nothing: rebuild the summary from the bench/out/*.json present (e.g. after re-running one module)",
    )
    args = parser.parse_args()
    if args.summary_only:
        summarize_existing(no_write=args.no_write)
        return
    only = {m for m in args.only.split(",") if m}
    skip = {m for m in args.skip.split(",") if m}
    modules = [m for m in MODULES if (not only or m.name in only) and m.name not in skip]

    started, started_iso = datetime.now(UTC), now_iso()
    load_start = os.getloadavg()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tool = ensure_wrk()
    if any(m.name in ("ingest", "events_listing") for m in modules):
        from bench._unleash import ensure_installed

        ensure_installed()
    sampler = RssSampler()
    sampler.start()
    outcomes = []
    try:
        for module in modules:
            outcomes.append(run_module(module, args.quick, sampler, no_write=args.no_write))
    finally:
        sampler.stop()
    finished = datetime.now(UTC)

    documents = []
    for outcome in outcomes:
        document = read_results(outcome.module)
        if document is not None and document.get("started_at", "") >= started_iso:
            documents.append(document)
        elif outcome.status.startswith("ok") and args.no_write:
            outcome.status = "ok (no results JSON written with --no-write)"
        elif outcome.status.startswith("ok"):
            outcome.status = "ok, but no results JSON from this run"
    peaks = sorted(sampler.peaks.values(), key=lambda p: -p.hwm_mb)
    rss_rows = []
    if peaks:
        top = peaks[0]
        rss_rows.append(
            ResultRow(
                C6_MEMORY,
                f"peak RSS of any switchman process over the suite ({len(peaks)} processes; max in {top.module})",
                round(top.hwm_mb, 1),
                "MB",
                f"≤ {PEAK_GOAL_MB:g} MB",
                top.hwm_mb <= PEAK_GOAL_MB,
            )
        )
        per_module: dict[str, float] = defaultdict(float)
        for peak in peaks:
            per_module[peak.module] = max(per_module[peak.module], peak.hwm_mb)
        rss_rows += [
            ResultRow(C6_MEMORY, f"peak RSS in {m}", round(v, 1), "MB") for m, v in per_module.items()
        ]
    write_results(
        "suite",
        "python -m bench.suite" + (" --quick" if args.quick else ""),
        started_iso,
        rss_rows,
        extra={
            "outcomes": [outcome.__dict__ for outcome in outcomes],
            "peaks": [peak.__dict__ for peak in peaks],
            "load_average_start": [round(x, 2) for x in load_start],
        },
    )
    documents.append(read_results("suite") or {})
    summary = render_summary(
        documents,
        outcomes,
        started=started,
        finished=finished,
        load_start=load_start,
        load_end=os.getloadavg(),
        tool=tool,
        quick=args.quick,
    )
    print("\n" + summary)
    if not args.no_write:
        write_summary_first(summary)
        print(f"wrote {BENCHMARKS_MD.relative_to(ROOT)} ({SUMMARY_PREFIX})")
    failed = [
        o for o in outcomes if not o.status.startswith(("ok", "skipped")) or o.status.startswith("ok, but")
    ]
    if failed:
        raise SystemExit(f"failed: {', '.join(f'{o.module} ({o.status})' for o in failed)}")


if __name__ == "__main__":
    main()
