"""``mlwatch check SERVICE`` and ``mlwatch reference upload FILE --service NAME``.

Both ask the API (``--url``/``MLWATCH_URL``, ``--token``/``MLWATCH_TOKEN``; see
``monitor.commands.api``), so the server checks the token's role (operator for a check,
admin for a reference) and runs the same use case as ``POST /v1/services/{service}/checks``
(``monitor.drift.actions.run_check``) and ``POST /v1/services/{service}/reference``.

    $ mlwatch check credit
    check 42 of credit, window 2026-11-26 09:00 → 10:00 UTC: ok, 20000 rows sampled
    feature        method          score  threshold  drift
    income         wasserstein     0.412      0.100  DRIFT
    ...
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor.check_summary import CheckSummary
from monitor.commands.api import api_options, connect, path_part
from monitor.records import CheckRecord


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
@api_options
@click.pass_context
def check(
    ctx: click.Context,
    service: str,
    start: float | None,
    end: float | None,
    sample_size: int | None,
    fail_on_drift: bool,
    as_json: bool,
    url: str | None,
    api_token: str | None,
) -> None:
    """Run a drift and quality check of SERVICE's latest window now and print the verdicts (through the API).

    \b
        mlwatch check credit
        mlwatch check credit --json | jq .summary.drift_share
    """
    if start is not None and end is not None and start >= end:
        raise click.BadParameter(f"expected a start before the end ({end}), got {start}", param_hint="--start")
    window = {"start": start, "end": end, "sample_size": sample_size}
    with connect(ctx, url, api_token) as api:
        found = api.call(
            "POST", f"/v1/services/{path_part(service)}/checks", json={k: v for k, v in window.items() if v is not None}
        )
    click.echo(as_json_line(found) if as_json else describe(service, _record(found)))
    if fail_on_drift and found["summary"].get("dataset_drift"):
        ctx.exit(1)


def as_json_line(found: dict[str, Any]) -> str:
    """The API's check as one line of JSON (NaN and infinity as null)."""
    import orjson

    return orjson.dumps(found).decode()


def _record(found: dict[str, Any]) -> CheckRecord:
    """The record of the API's check (``CheckOut``) that ``describe`` reads."""
    fields = ("id", "window_start", "window_end", "created_at", "model_version", "status", "trigger")
    summary = CheckSummary.decode(found["summary"])
    return CheckRecord(
        service_id=0, results=found["results"], error=found["error"], summary=summary, **{k: found[k] for k in fields}
    )


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def describe(service: str, record: Any) -> str:
    """The verdicts of a check as text: header, one line per feature, then quality."""
    s = record.summary.encode()
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
@api_options
@click.pass_context
def reference_upload(
    ctx: click.Context, file: Path, service: str, model_version: str, url: str | None, api_token: str | None
) -> None:
    """Set SERVICE's reference data from a Parquet, CSV or JSON-lines FILE (through the API, an admin's role)."""
    path = f"/v1/services/{path_part(service)}/reference"
    with connect(ctx, url, api_token) as api:
        if file.suffix in (".jsonl", ".ndjson"):
            stored = api.call("POST", path, json={"records": _json_lines(file), "model_version": model_version})
        else:
            upload = {"file": (file.name, file.read_bytes())}
            stored = api.call("POST", path, files=upload, data={"model_version": model_version})
    version = f"model version {model_version}" if model_version else "any model version"
    click.echo(f"reference of {service} ({version}): {stored['rows']} rows, columns {', '.join(stored['columns'])}")
    if stored["missing_features"]:
        click.echo(f"  warning: no column for features {', '.join(stored['missing_features'])}; they are not checked")
    if stored["baseline"]:
        click.echo("  baseline: " + ", ".join(f"{k} {v:.4g}" for k, v in stored["baseline"].items()))


def _json_lines(file: Path) -> list[Any]:
    """The records of a JSON-lines file (blank lines skipped), or a ClickException naming the bad line."""
    import json

    records = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise click.ClickException(f"{file}:{number}: expected JSON lines (one object per line): {exc}") from exc
    return records
