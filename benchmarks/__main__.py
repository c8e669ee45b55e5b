"""Run every ``benchmarks/bench_*.py`` (or those named: ``python -m benchmarks ingest drift``).

Each module has ``main() -> list[Result]``; results print as ratios against a baseline
measured in the same run, with peak memory, and the exit status is non-zero when a
target is missed.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks
from benchmarks.harness import Result, report


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    wanted = [n for n in names if not argv or n.removeprefix("bench_") in argv]
    results: list[Result] = []
    for name in wanted:
        print(f"== {name}", flush=True)
        results.extend(importlib.import_module(f"benchmarks.{name}").main())
    return report(results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
