"""`make stress` / `python -m stress [--quick]`: every stress script in turn; exit 1 if any promise broke.

Full run ≈ 20-30 min on a 2-CPU machine (the soak alone is 10 min); `--quick` ≈ 6-8 min.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from stress import abuse, concurrency, crash, db_faults, soak
from stress._report import Result, load_average, timed

SCRIPTS = [crash.run, concurrency.run, db_faults.run, abuse.run, soak.run]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs of every script")
    args = parser.parse_args()
    print(f"load average at start: {load_average()}")
    results: list[Result] = []
    for script in SCRIPTS:
        try:
            result = asyncio.run(timed(script, args.quick))
        except Exception as exc:  # a script that crashes is a failed run, and the others still run
            result = Result(script.__module__, problems=[f"the script crashed: {exc!r}"])
        result.print()
        results.append(result)
    print(f"\nload average at end: {load_average()}")
    for result in results:
        print(f"  {'PASS' if result.passed else 'FAIL'}  {result.name}  ({result.seconds:.0f} s)")
    sys.exit(0 if all(r.passed for r in results) else 1)


if __name__ == "__main__":
    main()
