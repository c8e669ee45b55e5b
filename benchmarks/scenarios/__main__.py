"""``python -m benchmarks.scenarios [NAME ...] [--seed N] [--speed S] [--rate R]`` (``make scenarios``).

Runs the named scenarios (all by default) one after another, each through fresh processes,
prints one row per scenario and exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.scenarios.catalog import named
from benchmarks.scenarios.run import Outcome, RunOptions, run_scenario, speed_of

HEADER = (
    f"{'scenario':18} {'detect':>6} {'early':>5} {'retrain':>7} {'promote':>7} {'rollback':>8} {'reject':>6} "
    f"{'retr@':>5} {'prom@':>5} {'before':>6} {'after':>6} {'oracle':>6} {'gap':>6} {'secs':>5}  targets"
)


def main(argv: list[str]) -> int:
    """Run, print the table, return 1 if a target was missed."""
    args = _parser().parse_args(argv)
    try:
        scenarios = named(args.names)
    except ValueError as exc:
        print(exc)
        return 2
    options = RunOptions(seed=args.seed, speed=args.speed, rate=args.rate, keep=args.keep)
    outcomes = []
    for scenario in scenarios:
        speed = speed_of(scenario, options)
        print(f"== {scenario.name}: {scenario.summary} (seed {options.seed}, speed {speed:g})", flush=True)
        outcomes.append(run_scenario(scenario, options, echo=lambda line: print(line, flush=True)))
        print(_row(outcomes[-1]), flush=True)
    print(f"\n{HEADER}")
    for outcome in outcomes:
        print(_row(outcome))
        if outcome.by_window:
            print(f"{'':18} accuracy by window: {' '.join(f'{a:.3f}' for a in outcome.by_window)}")
        if outcome.canary_status is not None:
            print(f"{'':18} {_canary(outcome)}")
    return 1 if any(o.misses for o in outcomes) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scenarios", description=__doc__)
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every generator (default 0)")
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="time compression of every scenario (default: each scenario's own, 240 or 120: 15 s or 30 s windows)",
    )
    parser.add_argument("--rate", type=float, default=80.0, help="predictions per second (default 80)")
    parser.add_argument("--keep", type=Path, default=None, help="keep store, MLflow, logs under KEEP/NAME")
    return parser


def _row(o: Outcome) -> str:
    if o.not_run:
        return f"{o.scenario:18} not run: {o.not_run}"
    gap = None if o.accuracy is None or o.oracle is None else o.oracle - o.accuracy
    cells = [_num(o.detection_delay, 6, 1), f"{o.early_alerts:>5}", f"{o.retrains:>7}", f"{o.promotions:>7}"]
    cells += [f"{o.rollbacks:>8}", f"{o.rejected:>6}", _num(o.retrain_at, 5, 1), _num(o.promoted_at, 5, 1)]
    cells += [_num(o.baseline), _num(o.accuracy), _num(o.oracle), _num(gap)]
    verdict = "met" if not o.misses else "MISSED: " + "; ".join(o.misses)
    return f"{o.scenario:18} {' '.join(cells)} {o.seconds:>5.0f}  {verdict}"


def _canary(o: Outcome) -> str:
    after = "" if o.canary_ended_after is None else f" after {o.canary_ended_after:.2f} windows"
    share = "" if o.canary_rows_share is None else f" ({o.canary_rows_share:.1%} of the rows of its time)"
    return f"canary: {o.canary_status}{after}; it answered {o.canary_rows} rows{share}; client errors {o.failures}"


def _num(value: float | None, width: int = 6, digits: int = 3) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
