"""``mlwatch ingest FILE --service NAME``: a batch job's predictions, through the API or straight into the store.

All or nothing per file, resumable: the whole file is read and validated first (types,
finiteness, the service's registered features, timestamps), so a bad row stops the command
with its line before anything is stored. Rows are then stored in chunks; request ids come
from the file (its ``request_id`` column, else the file's content hash and the line), so
if loading is interrupted, running the same command again skips what is already stored
and loads the rest.

With ``--direct`` rows go into the configured store by its bulk ingest
(``Store.add_predictions``), and the request ids already there are counted in bulk while
the file is checked, so a re-run converts only the frames that still have new rows (a
re-run of 1M stored rows took 105 s through the API before: every row was built, sent and
refused as a duplicate). Through the API, three chunks are in flight at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import click

from monitor.commands.batch_file import FORMATS, BatchFile, Columns
from monitor.commands.progress import Progress
from monitor.records import Feature, LabelRecord, PredictionColumns, PredictionRecord, Service

if TYPE_CHECKING:
    from monitor.store import Store
    from monitor.store.ingest import EncodedBatch


class Sink(Protocol):
    """Where checked chunks go: the API, or the store itself (``--direct``)."""

    target: str  # what the one line on stderr names
    parallel: int  # sends in flight at once
    rows_per_send: int  # chunks are put together up to this many rows per send
    counts_stored: bool  # whether stored_count can say anything (the API cannot, yet)

    def service(self, name: str) -> Service: ...

    def stored(self, request_ids: list[str]) -> set[str]: ...

    def stored_count(self, request_ids: list[str]) -> int: ...

    def prepare(self, batch: PredictionColumns) -> Any:
        """What ``send`` sends for ``batch``, made on the main thread while the previous send runs."""

    def send(self, prepared: Any, labels: list[LabelRecord]) -> int: ...

    def close(self) -> None: ...


class ApiSink:
    """Sends chunks to the ingest API, a few at once (one kept-alive connection per thread);
    labels after their predictions."""

    parallel = 3
    rows_per_send = 1  # a chunk per request, as the server's request size limit expects
    counts_stored = False

    def __init__(self, url: str, token: str | None, source: str) -> None:
        self.url, self.token, self.target = url, token, f"server {url} ({source})"
        self.local = threading.local()
        self.name = ""

    def _client(self) -> Any:
        from monitor.sdk.transport import HttpClient

        if not hasattr(self.local, "client"):
            self.local.client = HttpClient(self.url, self.token, timeout=120.0)
        return self.local.client

    def service(self, name: str) -> Service:
        """The service as registered (its features are what rows are checked against)."""
        import orjson

        self.name = name
        status, body = self._client().request("GET", f"/v1/services/{quote(name, safe='')}")
        if status != 200:
            raise click.ClickException(
                f"cannot read service {name!r} from the API at {self.url} (HTTP {status}): {body[:300]!r}"
            )
        data = orjson.loads(body)
        features = tuple(Feature(f["name"], f.get("type", "numerical")) for f in data["features"])
        return Service(0, data["name"], data["task"], data.get("model_name"), data.get("target"), features)

    def stored(self, request_ids: list[str]) -> set[str]:
        """Unknown through the API: the server skips stored ids as they come."""
        return set()

    def stored_count(self, request_ids: list[str]) -> int:
        """Unknown through the API, as ``stored``."""
        return 0

    def prepare(self, batch: PredictionColumns) -> bytes:
        """The request body for the chunk's predictions."""
        import orjson

        return orjson.dumps({"records": [_json(r) for r in batch.records()]})

    def send(self, prepared: bytes, labels: list[LabelRecord]) -> int:
        """Store a chunk's predictions, then its labels; returns how many predictions were new."""
        import orjson

        from monitor.sdk.transport import check_status

        path = f"/v1/services/{quote(self.name, safe='')}"
        status, answer = self._client().request("POST", f"{path}/predictions", prepared)
        check_status(status, answer)
        if labels:
            truth = [{"request_id": r.request_id, "label": r.label, "timestamp": r.ts} for r in labels]
            check_status(*self._client().request("POST", f"{path}/labels", orjson.dumps({"labels": truth})))
        return int(orjson.loads(answer)["accepted"])

    def close(self) -> None:
        """Nothing held beyond the threads' connections, which close with them."""


def _json(record: PredictionRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"request_id": record.request_id, "timestamp": record.ts, "features": record.features}
    for name in ("prediction", "latency_ms", "model_version"):
        if getattr(record, name) is not None:
            out[name] = getattr(record, name)
    return out


class StoreSink:
    """Writes chunks into the configured store with its bulk ingest: encoded here
    (``encode_columns``), stored by a child process (``StoreWriter``, ``Store.add_encoded``).

    Not through ``Ingestor``, whose ``check_batch`` each chunk has passed already while the
    file was checked (``BatchFile`` runs it on every column numpy does not prove valid):
    repeating it here took a pass over every value again, inside the storing phase.

    Labels go first: a stored prediction then always has its label, so a re-run may skip
    every row whose prediction is stored without losing the labels of an interrupted one.
    """

    parallel = 1
    # One transaction per 20,000 rows rather than per 5000-row chunk: each commit writes every
    # page it dirtied and folds into an hour of rollup minutes. A 1M-row file, CPU seconds and
    # peak RSS: 5000 rows 21.8 s and 595 MB, 20,000 rows 18.9 s and 645 MB, 50,000 rows 18.0 s
    # and 743 MB (two sends are alive at once: the one written, the one being built).
    rows_per_send = 20_000
    counts_stored = True

    def __init__(self, store: Store, target: str, url: str) -> None:
        from monitor.commands.batch_writer import StoreWriter

        self.store, self.target = store, f"store {target}"
        self.writer = StoreWriter(url)  # the writes, in a child process (see batch_writer)
        self.found: Service | None = None

    def service(self, name: str) -> Service:
        """The service as stored."""
        self.found = self.store.get_service(name)
        return self.found

    def stored(self, request_ids: list[str]) -> set[str]:
        """The ids the store has already."""
        from monitor.store.request_ids import stored_request_ids

        assert self.found is not None
        return stored_request_ids(self.store.engine, self.found.id, request_ids)

    def stored_count(self, request_ids: list[str]) -> int:
        """How many of the ids the store has already (cheaper than which)."""
        from monitor.store.request_ids import stored_count

        assert self.found is not None
        return stored_count(self.store.engine, self.found.id, request_ids)

    def prepare(self, batch: PredictionColumns) -> EncodedBatch:
        """The rows to insert, encoded (the part of storing that holds the GIL)."""
        from monitor.store.ingest import encode_columns

        assert self.found is not None
        return encode_columns(self.found, batch)

    def send(self, prepared: EncodedBatch, labels: list[LabelRecord]) -> int:
        """Store labels, then predictions (in the writer process); returns how many predictions were new."""
        assert self.found is not None
        return self.writer.write(self.found, prepared, labels)

    def close(self) -> None:
        """Stop the writer process and close the store."""
        self.writer.close()
        self.store.close()


@dataclass(frozen=True)
class Loaded:
    """What ``mlwatch ingest`` did, as printed (``--json``: as one JSON object)."""

    file: str
    service: str
    target: str
    rows: int
    new: int
    already_stored: int
    check_seconds: float
    store_seconds: float


def check_file(batch: BatchFile, sink: Sink) -> dict[int, tuple[int, int]]:
    """Read and validate the whole file; a bad row stops here, before anything is stored.

    A frame whose rows are all stored already is not validated: none of it would be stored
    again. So request ids are read first, alone where the format allows, and counted in the
    store; then only the frames with rows to store are read whole and validated (a re-run of
    a loaded Parquet file reads one column). Returns, per frame (by the index of its first
    row), its rows and how many of them are stored.
    """
    frames, todo = {}, set()
    columns = batch.id_columns() if sink.counts_stored else None
    with Progress("checking", batch.rows()) as progress:
        for offset, frame in batch.frames(columns):
            ids = batch.checked_ids(frame, offset)
            stored = sink.stored_count(ids)
            frames[offset] = (len(frame), stored)
            if stored == len(frame):
                progress.advance(len(frame))
            elif columns is None:
                batch.check(frame, offset, ids)
                progress.advance(len(frame))
            else:
                todo.add(offset)
        for offset, frame in batch.frames() if todo else ():
            if offset in todo:
                batch.check(frame, offset)
                progress.advance(len(frame))
    return frames


def store_file(batch: BatchFile, sink: Sink, frames: dict[int, tuple[int, int]]) -> int:
    """Store the rows not stored yet, ``sink.parallel`` sends at a time; returns how many were new.

    Each send is converted and encoded here, on the main thread (``sink.prepare``), while the
    sink's thread writes the previous one: SQLite's driver lets go of the GIL inside each
    statement, so the writes overlap the Python work (1M rows: 38.5k rows/s with records built
    here and encoded by the writer, 49k with columns encoded by the writer, more as now).
    """
    new = 0
    todo = sum(rows - stored for rows, stored in frames.values())
    with Progress("storing", todo) as progress, ThreadPoolExecutor(sink.parallel) as pool:
        pending: deque[tuple[Future[int], int]] = deque()
        for part, labels in _sends(batch, sink, frames) if todo else ():  # nothing new: not even read again
            pending.append((pool.submit(sink.send, sink.prepare(part), labels), len(part.request_ids)))
            while len(pending) > sink.parallel:
                new += _settle(pending.popleft(), progress)
        while pending:
            new += _settle(pending.popleft(), progress)
    return new


def _sends(
    batch: BatchFile, sink: Sink, frames: dict[int, tuple[int, int]]
) -> Iterator[tuple[PredictionColumns, list[LabelRecord]]]:
    """The predictions and labels not stored yet, ``sink.rows_per_send`` rows or more at a time."""
    parts: list[PredictionColumns] = []
    labels: list[LabelRecord] = []
    rows = 0
    for offset, frame in batch.frames():
        total, stored = frames[offset]
        if stored == total:
            continue  # wholly stored already: not even converted
        chunk = batch.chunk(frame, offset)
        skip = sink.stored(chunk.request_ids) if stored else set()
        part = chunk.columns(skip)
        if parts and list(part.features) != list(parts[0].features):
            # JSON lines read in chunks may name other keys: a row keeps only its chunk's features
            yield _joined(parts), labels
            parts, labels, rows = [], [], 0
        parts.append(part)
        labels += chunk.labels(skip)
        rows += len(part.request_ids)
        if rows >= sink.rows_per_send:
            yield _joined(parts), labels
            parts, labels, rows = [], [], 0
    if parts:
        yield _joined(parts), labels


def _joined(parts: list[PredictionColumns]) -> PredictionColumns:
    """One batch of the parts' rows, in order (parts with the same features)."""
    if len(parts) == 1:
        return parts[0]

    def joined(lists: list[list[Any] | None]) -> list[Any] | None:
        if all(values is None for values in lists):
            return None
        filled = (repeat(None, len(p.request_ids)) if v is None else v for p, v in zip(parts, lists, strict=True))
        return list(chain.from_iterable(filled))

    return PredictionColumns(
        request_ids=list(chain.from_iterable(part.request_ids for part in parts)),
        ts=list(chain.from_iterable(part.ts for part in parts)),
        features={name: list(chain.from_iterable(p.features[name] for p in parts)) for name in parts[0].features},
        prediction=joined([part.prediction for part in parts]),
        latency_ms=joined([part.latency_ms for part in parts]),
        model_version=joined([part.model_version for part in parts]),
    )


def _settle(item: tuple[Future[int], int], progress: Progress) -> int:
    future, rows = item
    accepted = future.result()
    progress.advance(rows)
    return accepted


def _sink(ctx: click.Context, direct: bool, url: str | None, token: str | None) -> Sink:
    import os

    from monitor.commands import open_configured_store
    from monitor.commands.collectors import api_endpoint

    if direct:
        store, where = open_configured_store(ctx, announce=False)
        return StoreSink(store, where.describe(), where.url)
    api_url, api_token = api_endpoint(url, token)
    source = "--url" if url else "MLWATCH_URL" if os.environ.get("MLWATCH_URL") else "the default; set MLWATCH_URL"
    return ApiSink(api_url, api_token, source)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while records are built.

    Each row makes a dict and a record, both tracked, so the default thresholds collect every
    few hundred rows and walk everything imported so far: building 50k records took 0.8 s
    with them and 0.47 s with imports frozen and a threshold of 100k. Records hold no cycles,
    and the peak memory of a 200k-row load was the same (462 MB) either way.
    """
    import gc

    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def _load(batch: BatchFile, sink: Sink) -> tuple[int, int, float, float]:
    from monitor.errors import MlwatchError
    from monitor.sdk.transport import Rejected, Retryable

    try:
        start = time.perf_counter()
        frames = check_file(batch, sink)
        checked = time.perf_counter()
        new = store_file(batch, sink, frames)
    except (Retryable, Rejected, MlwatchError) as exc:
        raise click.ClickException(
            f"{exc}; run the same command again to load the rest (stored rows are skipped)"
        ) from exc
    return sum(rows for rows, _ in frames.values()), new, checked - start, time.perf_counter() - checked


def _service(sink: Sink, name: str) -> Service:
    from monitor.commands import POINT_ELSEWHERE
    from monitor.errors import NotFound
    from monitor.sdk.transport import Retryable

    try:
        return sink.service(name)
    except NotFound as exc:
        raise click.ClickException(f"{exc} (looked in the {sink.target}; {POINT_ELSEWHERE})") from exc
    except Retryable as exc:
        raise click.ClickException(
            f"cannot reach the {sink.target}: {exc}; start `mlwatch server`, point at a running one with "
            "--url or MLWATCH_URL, or write into the store itself with --direct"
        ) from exc


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
@click.option(
    "--direct",
    is_flag=True,
    help="Write straight into the configured store (store_url: --config or MLWATCH_STORE_URL) instead of "
    "through the API; a re-run then counts the stored rows in bulk instead of sending them all again. "
    "The store must exist already.",
)
@click.option("--url", default=None, help="mlwatch API URL (default: $MLWATCH_URL or http://127.0.0.1:8000).")
@click.option("--token", default=None, help="Ingest token (default: $MLWATCH_TOKEN).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the summary as one JSON object: file, service, target, rows, new, already_stored, "
    "check_seconds, store_seconds.",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    file: Path,
    service: str,
    fmt: str | None,
    model_version: str | None,
    label_column: str,
    timestamp_column: str,
    prediction_column: str,
    request_id_column: str,
    chunk_size: int,
    direct: bool,
    url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Load a batch job's predictions (Parquet, CSV or JSON lines) into SERVICE.

    \b
    All or nothing per file, and resumable: the whole file is validated first and a bad
    row stops the command with its line number before anything is stored. Rows are then
    stored in chunks; request ids come from the file (its request id column, else its
    content hash and line), so after an interruption the same command skips the rows
    already stored and loads the rest. Every other column is a feature; a label column
    sends ground truth too. Progress goes to stderr, the summary to stdout.

    \b
        mlwatch ingest preds.parquet --service credit
        mlwatch ingest preds.parquet --service credit --direct --json | jq .new
    """
    fmt = fmt or FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise click.BadParameter(f"cannot tell the format of {file.name}; pass --format csv, parquet or jsonl")
    columns = Columns(request_id_column, timestamp_column, prediction_column, label_column)
    sink = _sink(ctx, direct, url, token)
    try:
        click.echo(f"{ctx.command_path}: {sink.target}", err=True)
        batch = BatchFile(file, fmt, columns, chunk_size, model_version, _service(sink, service))
        with _fewer_collections():
            total, new, checking, storing = _load(batch, sink)
    finally:
        sink.close()
    done = Loaded(str(file), service, sink.target, total, new, total - new, round(checking, 3), round(storing, 3))
    if as_json:
        import dataclasses
        import json

        click.echo(json.dumps(dataclasses.asdict(done)))
    else:
        click.echo(f"{file.name}: {total} row(s), {new} new, {total - new} already stored")
