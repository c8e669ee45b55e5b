"""``mlwatch check SERVICE`` and ``mlwatch reference upload FILE --service NAME``.

Both work directly against the configured store (``store_url``), like ``mlwatch token``, and
say which on stderr; neither creates one: a store that is not there is refused, naming the
URL looked at and how to point at another (``--config``, ``MLWATCH_STORE_URL``).

    $ mlwatch check credit
    check 42 of credit, window 2026-11-26 09:00 → 10:00 UTC: ok, 20000 rows sampled
    feature        method          score  threshold  drift
    income         wasserstein     0.412      0.100  DRIFT
    ...
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor.commands import POINT_ELSEWHERE, StoreLocation, open_configured_store, settings_from
from monitor.errors import MlwatchError, NotFound


def _open(ctx: click.Context) -> tuple[Any, StoreLocation]:
    """The configured store, which must exist already, with the services of mlwatch.yaml registered."""
    return open_configured_store(ctx)


def _service(store: Any, where: StoreLocation, name: str) -> Any:
    try:
        return store.get_service(name)
    except NotFound as exc:
        raise click.ClickException(f"{exc} (looked in the store at {where.describe()}; {POINT_ELSEWHERE})") from exc


def _sync_references(ctx: click.Context, store: Any) -> None:
    from monitor.drift.reference import sync_configured_references

    for problem in sync_configured_references(settings_from(ctx), store):
        click.echo(f"warning: {problem}", err=True)


@click.command()
@click.argument("service")
@click.option("--start", type=float, help="Window start, epoch seconds (default: end minus the service's window).")
@click.option("--end", type=float, help="Window end, epoch seconds (default: now).")
@click.option("--sample-size", type=click.IntRange(100, 1_000_000), help="Rows to sample (default: the service's).")
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 1 when the window has dataset drift.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the check as one JSON object (id, service, window_start, window_end, status, summary, "
    "results, error) instead of the table; --fail-on-drift still sets the exit status.",
)
@click.pass_context
def check(
    ctx: click.Context,
    service: str,
    start: float | None,
    end: float | None,
    sample_size: int | None,
    fail_on_drift: bool,
    as_json: bool,
) -> None:
    """Run a drift and quality check of SERVICE's latest window now and print the verdicts.

    \b
        mlwatch check credit
        mlwatch check credit --json | jq .summary.drift_share
    """
    store, where = _open(ctx)
    try:
        from monitor.drift.check import CheckRunner

        _sync_references(ctx, store)
        found = _service(store, where, service)
        end = time.time() if end is None else end
        start = end - float(found.config.get("window", 3600.0)) if start is None else start
        if start >= end:
            raise click.BadParameter(f"expected a start before the end ({end}), got {start}", param_hint="--start")
        record = CheckRunner(store).run(found, start, end, trigger="manual", sample_size=sample_size)
    except MlwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    click.echo(as_json_line(service, record) if as_json else describe(service, record))
    if fail_on_drift and record.summary.get("dataset_drift"):
        ctx.exit(1)


def as_json_line(service: str, record: Any) -> str:
    """The check as one line of JSON (NaN and infinity as null, numpy values as numbers)."""
    import dataclasses

    import orjson

    fields = {"service": service, **dataclasses.asdict(record)}
    return orjson.dumps(fields, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str).decode()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def describe(service: str, record: Any) -> str:
    """The verdicts of a check as text: header, one line per feature, then quality."""
    s = record.summary
    lines = [
        f"check {record.id} of {service}, window {_when(record.window_start)} → {_when(record.window_end)} UTC: "
        f"{record.status}, {s['rows']} rows sampled, reference {s['reference_rows']} rows"
    ]
    if record.error:
        lines.append(f"  note: {record.error}")
    if record.results.get("features"):
        lines.append(f"  {'feature':24} {'method':22} {'score':>9} {'threshold':>9}  drift")
        for f in record.results["features"]:
            verdict = "DRIFT" if f["drifted"] else "-"
            lines.append(f"  {f['name']:24} {f['method']:22} {f['score']:9.4g} {f['threshold']:9.4g}  {verdict}")
    lines.append(f"  drift share {s['drift_share']:.2f}, dataset drift: {'yes' if s['dataset_drift'] else 'no'}")
    for key in ("prediction_drift", "target_drift"):
        if s.get(key):
            found = s[key]
            verdict = "DRIFT" if found["drifted"] else "none"
            lines.append(f"  {key.replace('_', ' ')}: {verdict} ({found['method']} {found['score']:.4g})")
    lines.extend(_data_quality_lines(s["data_quality"]))
    lines.extend(_quality_lines(s))
    return "\n".join(lines)


def _data_quality_lines(dq: dict[str, Any]) -> list[str]:
    out = [f"  missing values {dq['missing_share']:.1%}"]
    if dq["new_categories"]:
        out.append("  new categories: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in dq["new_categories"].items()))
    outside = {k: v for k, v in dq["out_of_range_share"].items() if v > 0}
    if outside:
        out.append("  outside the reference range: " + ", ".join(f"{k} {v:.1%}" for k, v in outside.items()))
    if dq["type_mismatches"]:
        out.append("  type mismatches: " + ", ".join(f"{k} {v}" for k, v in dq["type_mismatches"].items()))
    return out


def _quality_lines(s: dict[str, Any]) -> list[str]:
    out = [f"  label coverage {s['label_coverage']:.0%}"]
    for key in ("quality", "estimated_quality", "baseline"):
        if s.get(key):
            out.append(f"  {key.replace('_', ' ')}: " + ", ".join(f"{k} {v:.4g}" for k, v in s[key].items()))
    for key in ("decay", "estimated_decay"):
        if s.get(key):
            out.append(
                f"  {key.replace('_', ' ')}: " + ", ".join(f"{k} {v['absolute']:+.4g}" for k, v in s[key].items())
            )
    return out


@click.group()
def reference() -> None:
    """Manage a service's reference (training) data."""


@reference.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--service", required=True, help="The service whose reference this is.")
@click.option("--model-version", default="", help="The model version it belongs to (default: any version).")
@click.pass_context
def reference_upload(ctx: click.Context, file: Path, service: str, model_version: str) -> None:
    """Set SERVICE's reference data from a Parquet, CSV or JSON-lines FILE."""
    store, where = _open(ctx)
    try:
        found = _service(store, where, service)
        info = store.set_reference(found, _read(file), model_version=model_version, source=f"cli:{file.name}")
        store.audit("cli", "reference.set", service, {"model_version": model_version, "rows": info.row_count})
        stats = store.reference_stats(found, model_version)
    except MlwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    version = f"model version {model_version}" if model_version else "any model version"
    columns = ", ".join(stats["frame_columns"])
    click.echo(f"reference of {service} ({version}): {info.row_count} rows, columns {columns}")
    if stats.get("missing_columns"):
        click.echo(f"  warning: no column for features {', '.join(stats['missing_columns'])}; they are not checked")
    if stats.get("baseline"):
        click.echo("  baseline: " + ", ".join(f"{k} {v:.4g}" for k, v in stats["baseline"].items()))


def _read(file: Path) -> Any:
    from monitor.drift.reference import read_upload

    if file.suffix in (".jsonl", ".ndjson"):
        import pandas as pd

        try:
            return pd.read_json(file, lines=True)
        except ValueError as exc:
            raise click.ClickException(f"{file}: expected JSON lines (one object per line): {exc}") from exc
    return read_upload(file.read_bytes(), file.name)
