"""Run every ``benchmarks/bench_*.py`` (or those named: ``python -m benchmarks ingest drift``).

Each module has ``main() -> list[Result]``; results print as ratios against a baseline
measured in the same run, with peak memory, and the exit status is non-zero when a
target is missed.

Each module runs in an interpreter of its own, so that what an earlier one imported,
allocated or left behind does not count against a later one. In one process, every peak
RSS after the drift benchmark was its Evidently preset's 1.9 GB, and the ingest benchmark,
which ran next, measured 85,000 rows/s direct into SQLite against 115,000-125,000 alone.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import subprocess
import sys
import tempfile
from pathlib import Path

import benchmarks
from benchmarks.harness import Result, report


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:  # the child of _isolated: python -m benchmarks --one NAME RESULTS.json
        _, name, out = argv
        own = importlib.import_module(f"benchmarks.{name}").main()
        Path(out).write_text(json.dumps([dataclasses.asdict(r) for r in own]))
        return 0
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    wanted = [n for n in names if not argv or n.removeprefix("bench_") in argv]
    unknown = set(argv) - {n.removeprefix("bench_") for n in names}
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; expected some of {', '.join(names)}")
        return 2
    results: list[Result] = []
    for name in wanted:
        print(f"== {name}", flush=True)
        results.extend(_isolated(name))
    return report(results)


def _isolated(name: str) -> list[Result]:
    """The results of one benchmark module, run in a fresh interpreter; a failing one's exit status."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        code = subprocess.run([sys.executable, "-m", "benchmarks", "--one", name, str(out)], check=False).returncode
        if code != 0 or not out.exists():
            return [Result(f"{name}: exited with status {code} before reporting", code, "", "<= 0")]
        return [Result(**fields) for fields in json.loads(out.read_text())]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
