"""What a stress script reports: figures (for docs/reliability.md) and broken promises (exit status 1)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, text: str) -> None:
        self.problems.append(text)

    @property
    def passed(self) -> bool:
        return not self.problems

    def print(self) -> None:
        verdict = "PASS" if self.passed else "FAIL"
        print(f"\n[{verdict}] {self.name} ({self.seconds:.0f} s, load average {load_average()})")
        print(json.dumps(self.figures, indent=2, default=str))
        for problem in self.problems:
            print(f"  BROKEN: {problem}")
        sys.stdout.flush()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


Script = Callable[[bool], Awaitable[Result]]


async def timed(script: Script, quick: bool) -> Result:
    start = time.monotonic()
    result = await script(quick)
    result.seconds = time.monotonic() - start
    return result


def main(script: Script, description: str) -> None:
    """Command line of one script: `python -m stress.<name> [--quick]`; exit 1 when a promise broke."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short run (1-2 min) for development")
    args = parser.parse_args()
    result = asyncio.run(timed(script, args.quick))
    result.print()
    sys.exit(0 if result.passed else 1)
