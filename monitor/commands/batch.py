"""``mlwatch ingest FILE --service NAME``: a batch job's predictions, loaded through the ingest API.

All or nothing per file, resumable: the whole file is read and validated first (types,
finiteness, the service's registered features, timestamps), so a bad row stops the command
with its line before anything is stored. Rows are then sent in chunks; request ids come
from the file (its ``request_id`` column, else the file's content hash and the line), so
if the upload is interrupted, running the same command again skips what is already stored
and loads the rest.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from monitor.commands.collectors import api_endpoint
from monitor.errors import ValidationFailed
from monitor.records import Feature, PredictionRecord, Service

if TYPE_CHECKING:
    import pandas as pd

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_INDEX = re.compile(r"^records\[(\d+)\]")


@dataclass(frozen=True)
class Columns:
    """Which columns of the file carry what; every other column is a feature."""

    request_id: str = "request_id"
    timestamp: str = "timestamp"
    prediction: str = "prediction"
    label: str = "label"
    latency: str = "latency_ms"
    model_version: str = "model_version"

    def special(self) -> set[str]:
        """The names that are not features."""
        return set(self.__dict__.values())


@dataclass(frozen=True)
class Row:
    """One row ready to send, and where it came from."""

    where: str  # "line 7" or "row 7"
    record: PredictionRecord
    label: Any
    has_label: bool


class BatchFile:
    """Reads a Parquet, CSV or JSON-lines file in chunks of ``Row``."""

    def __init__(
        self, path: Path, fmt: str, columns: Columns, chunk_size: int, model_version: str | None, service: Service
    ) -> None:
        self.path, self.format, self.columns, self.chunk_size = path, fmt, columns, chunk_size
        self.model_version = model_version
        # CSV has no types: a chunk with one odd cell reads its whole column as strings
        self.numerical = {f.name for f in service.features if f.type == "numerical"} if fmt == "csv" else set()
        self.digest = _digest(path)
        self.now = time.time()

    def chunks(self) -> Iterator[list[Row]]:
        """The file's rows, ``chunk_size`` at a time."""
        offset = 0
        for frame in self._frames():
            yield self._rows(frame, offset)
            offset += len(frame)

    def _frames(self) -> Iterator[pd.DataFrame]:
        import pandas as pd

        if self.format == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=self.chunk_size):
                yield batch.to_pandas()
        elif self.format == "csv":
            yield from pd.read_csv(self.path, chunksize=self.chunk_size)
        else:
            yield from pd.read_json(self.path, lines=True, chunksize=self.chunk_size)

    def where(self, index: int) -> str:
        """The line (CSV: the header is line 1; JSON lines) or row (Parquet) of row ``index``."""
        if self.format == "csv":
            return f"line {index + 2}"
        return f"line {index + 1}" if self.format == "jsonl" else f"row {index + 1}"

    def _rows(self, frame: pd.DataFrame, offset: int) -> list[Row]:
        c = self.columns
        stamps = _timestamps(frame[c.timestamp]) if c.timestamp in frame else None
        features = [n for n in frame.columns if n not in c.special()]
        rows = []
        for i, data in enumerate(frame.to_dict("records")):
            where = self.where(offset + i)
            try:
                rows.append(self._row(data, features, stamps[i] if stamps is not None else self.now, where))
            except ValidationFailed as exc:
                raise click.ClickException(f"{self.path}: {where}: {exc}") from exc
        return rows

    def _row(self, data: dict[str, Any], features: list[str], ts: float | None, where: str) -> Row:
        c = self.columns
        if ts is None:
            raise ValidationFailed(
                c.timestamp, f"expected an ISO 8601 time or epoch seconds, got {data[c.timestamp]!r}"
            )
        latency = _number(data.get(c.latency), c.latency)
        if latency is not None and latency < 0:
            raise ValidationFailed(c.latency, f"expected a non-negative number of milliseconds, got {latency!r}")
        record = PredictionRecord(
            request_id=str(_present(data.get(c.request_id)) or f"{self.digest}-{where.split()[-1]}")[:200],
            ts=ts,
            features={name: self._cell(data[name], str(name)) for name in features},
            prediction=_feature(data.get(c.prediction), c.prediction),
            latency_ms=latency,
            model_version=str(_present(data.get(c.model_version)) or self.model_version or "") or None,
        )
        label = _feature(data.get(c.label), c.label)
        return Row(where, record, label, label is not None)

    def _cell(self, value: Any, name: str) -> Any:
        if name in self.numerical and isinstance(value, str):
            try:
                return _feature(float(value), name)
            except ValueError:
                return value  # refused by the schema check, with its line
        return _feature(value, name)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def _timestamps(column: pd.Series) -> list[float | None]:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column):
        return [None if not math.isfinite(v) else float(v) for v in column.astype(float)]
    parsed = pd.to_datetime(column, utc=True, errors="coerce", format="mixed")
    return [None if pd.isna(v) else v.timestamp() for v in parsed]


def _present(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _feature(value: Any, name: str) -> Any:
    """A cell as the API takes it: empty → None, numpy scalars unwrapped, infinity refused."""
    value = _present(value)
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationFailed(name, f"expected a finite number, got {value!r}")
    if value is not None and not isinstance(value, str | int | float | bool):
        raise ValidationFailed(name, f"expected a number, string or boolean, got {type(value).__name__}")
    return value


def _number(value: Any, name: str) -> float | None:
    value = _feature(value, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationFailed(name, f"expected a number, got {value!r}")
    return float(value)


class Uploader:
    """Sends rows to the API in chunks; labels after their predictions."""

    def __init__(self, url: str, token: str | None, service: str) -> None:
        from monitor.sdk.transport import HttpClient

        self.client = HttpClient(url, token, timeout=120.0)
        self.service = quote(service, safe="")
        self.name = service

    def schema(self) -> Service:
        """The service as registered (its features are what rows are checked against)."""
        import json

        status, body = self.client.request("GET", f"/v1/services/{self.service}")
        if status != 200:
            raise click.ClickException(
                f"cannot read service {self.name!r} from the API (HTTP {status}): {body[:300]!r}"
            )
        data = json.loads(body)
        features = tuple(Feature(f["name"], f.get("type", "numerical")) for f in data["features"])
        return Service(0, data["name"], data["task"], data.get("model_name"), data.get("target"), features)

    def send(self, rows: list[Row]) -> int:
        """Store a chunk; returns how many were new."""
        import json

        from monitor.sdk.transport import check_status

        records = [_json(r.record) for r in rows]
        status, body = self.client.post(f"/v1/services/{self.service}/predictions", {"records": records})
        check_status(status, body)
        labels = [
            {"request_id": r.record.request_id, "label": r.label, "timestamp": r.record.ts} for r in rows if r.has_label
        ]
        if labels:
            check_status(*self.client.post(f"/v1/services/{self.service}/labels", {"labels": labels}))
        return int(json.loads(body)["accepted"])


def _json(record: PredictionRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"request_id": record.request_id, "timestamp": record.ts, "features": record.features}
    for name in ("prediction", "latency_ms", "model_version"):
        if getattr(record, name) is not None:
            out[name] = getattr(record, name)
    return out


def _check(batch: BatchFile, service: Service) -> int:
    """Read and validate the whole file; a bad row stops here, before anything is stored."""
    from monitor.ingest import check_batch

    total = 0
    for rows in batch.chunks():
        try:
            check_batch(service, [r.record for r in rows])
        except ValidationFailed as exc:
            match = _INDEX.match(exc.field)
            where = rows[int(match.group(1))].where if match else "a row"
            raise click.ClickException(f"{batch.path}: {where}: {exc.field.split('.', 1)[-1]}: {exc.message}") from exc
        total += len(rows)
    return total


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--service", required=True, help="The registered service the predictions belong to.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "jsonl"]),
    default=None,
    help="File format (default: from the extension: .csv, .parquet/.pq, .jsonl/.ndjson/.json).",
)
@click.option("--model-version", default=None, help="Model version for rows without a model_version column.")
@click.option("--label-column", default="label", show_default=True, help="Ground truth column, if any.")
@click.option(
    "--timestamp-column",
    default="timestamp",
    show_default=True,
    help="Prediction time column (ISO 8601 or epoch seconds); without it, rows get the time of loading.",
)
@click.option("--prediction-column", default="prediction", show_default=True)
@click.option(
    "--request-id-column",
    default="request_id",
    show_default=True,
    help="Request id column; without it ids are made from the file's content hash and line.",
)
@click.option("--chunk-size", type=click.IntRange(1, 10_000), default=5000, show_default=True)
@click.option("--url", default=None, help="mlwatch API URL (default: $MLWATCH_URL or http://127.0.0.1:8000).")
@click.option("--token", default=None, help="Ingest token (default: $MLWATCH_TOKEN).")
def ingest(
    file: Path,
    service: str,
    fmt: str | None,
    model_version: str | None,
    label_column: str,
    timestamp_column: str,
    prediction_column: str,
    request_id_column: str,
    chunk_size: int,
    url: str | None,
    token: str | None,
) -> None:
    """Load a batch job's predictions (Parquet, CSV or JSON lines) into SERVICE.

    \b
    All or nothing per file, and resumable: the whole file is validated first and a bad
    row stops the command with its line number before anything is stored. Rows are then
    sent in chunks; request ids come from the file (its request id column, else its
    content hash and line), so after an interruption the same command skips the rows
    already stored and loads the rest. Every other column is a feature; a label column
    sends ground truth too.
    """
    fmt = fmt or FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise click.BadParameter(f"cannot tell the format of {file.name}; pass --format csv, parquet or jsonl")
    columns = Columns(request_id_column, timestamp_column, prediction_column, label_column)
    uploader = Uploader(*api_endpoint(url, token), service)
    from monitor.sdk.transport import Rejected, Retryable

    try:
        schema = uploader.schema()
        batch = BatchFile(file, fmt, columns, chunk_size, model_version, schema)
        click.echo(f"checking {file.name} ...", err=True)
        total = _check(batch, schema)
        stored = 0
        with click.progressbar(length=total, label="loading", show_pos=True) as bar:
            for rows in batch.chunks():
                stored += uploader.send(rows)
                bar.update(len(rows))
    except (Retryable, Rejected) as exc:
        raise click.ClickException(
            f"{exc}; run the same command again to load the rest (stored rows are skipped)"
        ) from exc
    click.echo(f"{file.name}: {total} row(s), {stored} new, {total - stored} already stored")
