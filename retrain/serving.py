"""``mlwatch serve``: serves ``models:/<model>@champion`` over HTTP and hot-swaps on promotion.

MLflow's scoring payloads (``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs``) answer ``{"predictions": [...]}``; ``/ping``, ``/health`` and ``/version`` tell
which version serves. A poller resolves the alias every few seconds; a new champion is
downloaded, loaded and warmed up completely before one reference assignment swaps it in,
so requests in flight finish on the model they started with and none waits for the load.
Every prediction is logged through the mlwatch SDK with the version that made it. A version
the service has in shadow is scored beside the champion after each reply, never returned
(``retrain.shadow_process``); a version in canary answers its share of the requests, sticky
by request id, and a request it fails is answered by the champion (``retrain.canary``).

    >>> run_server(store, settings, "credit", port=5001, poll_interval=5)
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson

from monitor.config import Settings
from monitor.store import Store
from retrain.data import category_keys
from retrain.registry import CHAMPION, make_client, model_name

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from monitor.records import StageRecord
    from monitor.sdk import Tracker
    from retrain.canary import CanarySlot
    from retrain.shadow_process import ShadowProcess

log = logging.getLogger("mlwatch.serve")
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to predict, and the registry version it is."""

    version: str
    predict: Callable[[pd.DataFrame], Any]
    loaded_at: float
    predict_proba: Callable[[pd.DataFrame], list[dict[str, float]]] | None = None
    """Class probabilities per row, keyed by class, for classifiers whose flavor exposes them."""


class RequestGate:
    """Keeps background work (alias polls, loading a new version) off the GIL while requests run.

    Requests and the loader share one interpreter, so a load running beside a request took
    half of its GIL time and made it two to five times slower. A background thread working
    inside ``background()`` stops at its next Python call while any request is in flight and
    goes on when none is; it never waits longer than ``max_pause`` at a time, and then runs
    for at least ``min_run`` before it yields again, so a saturated server still swaps.
    """

    def __init__(self, max_pause: float = 0.05, min_run: float = 0.005) -> None:
        self.max_pause = max_pause
        self.min_run = min_run
        self._in_flight = 0
        self._idle = threading.Condition()
        self._run_until = 0.0

    @contextmanager
    def request(self) -> Iterator[None]:
        """Mark a request in flight for the duration of the block."""
        self._in_flight += 1  # only the event loop's thread changes the count
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                with self._idle:
                    self._idle.notify_all()

    @contextmanager
    def background(self) -> Iterator[None]:
        """Run the block in this thread, yielding to requests at every Python call."""
        previous = sys.getprofile()
        sys.setprofile(self._yield)
        try:
            yield
        finally:
            sys.setprofile(previous)

    def _yield(self, _frame: Any, _event: str, _arg: Any) -> None:
        if self._in_flight and time.perf_counter() >= self._run_until:
            with self._idle:
                idle = self._idle.wait_for(lambda: self._in_flight == 0, timeout=self.max_pause)
            self._run_until = 0.0 if idle else time.perf_counter() + self.min_run


class ModelSlot:
    """The model that serves now; replaced by one reference assignment (atomic under the GIL)."""

    def __init__(self) -> None:
        self.current: LoadedModel | None = None

    def swap(self, loaded: LoadedModel) -> None:
        """Serve ``loaded`` from the next request on."""
        self.current = loaded


class ChampionLoader:
    """Resolves the champion alias and loads a version as a pyfunc model (with its class
    probabilities too, unless ``probabilities`` is false)."""

    def __init__(self, client: MlflowClient, model: str, tracking_uri: str, *, probabilities: bool = True) -> None:
        self.client = client
        self.model = model
        self.tracking_uri = tracking_uri
        self.probabilities = probabilities

    def champion(self) -> str | None:
        """The version the ``champion`` alias points at, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model, CHAMPION).version)
        except MlflowException:
            return None

    def load(self, version: str) -> LoadedModel:
        """Download, load and warm up ``version`` (run once on its input example)."""
        import mlflow.artifacts
        import mlflow.pyfunc

        uri = self.client.get_model_version_download_uri(self.model, version)
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=self.tracking_uri)
        # suppress_warnings: no comparison of the model's pip requirements with the installed
        # packages, a scan of site-packages that held the GIL from requests in flight.
        model = mlflow.pyfunc.load_model(path, suppress_warnings=True)
        typed = _typed_input(model)

        def predict(frame: pd.DataFrame) -> Any:
            return model.predict(typed(frame))

        proba = _class_probabilities(model, typed) if self.probabilities else None
        example = getattr(model, "input_example", None)
        if example is not None:
            predict(example)
            if proba is not None:
                proba(example)
        return LoadedModel(version, predict, time.time(), proba)


def _typed_input(model: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Converts a request's columns the way training typed them (``retrain.data``): integers
    into floats where the signature wants doubles, and categories sent as numbers or booleans
    into their category keys where it wants strings (the service's schema accepts both)."""
    schema = model.metadata.get_input_schema()
    inputs = [(c.name, str(c.type)) for c in schema.inputs] if schema else []
    doubles = {name for name, kind in inputs if kind in ("DataType.double", "DataType.float")}
    strings = {name for name, kind in inputs if kind == "DataType.string"}

    def typed(frame: pd.DataFrame) -> pd.DataFrame:
        cast = {c: "float64" for c in doubles if c in frame.columns and frame[c].dtype.kind in "iub"}
        keyed = {c: category_keys(frame[c]) for c in strings if c in frame.columns and not _all_text(frame[c])}
        frame = frame.astype(cast) if cast else frame
        return frame.assign(**keyed) if keyed else frame

    return typed


def _all_text(column: pd.Series) -> bool:
    """True when every value is already a string (or missing): the common case, left as it is."""
    import pandas as pd

    return column.dtype.kind == "O" and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")


def _class_probabilities(
    model: Any, typed: Callable[[pd.DataFrame], pd.DataFrame]
) -> Callable[[pd.DataFrame], list[dict[str, float]]] | None:
    """``predict_proba`` of the flavor's own model (scikit-learn and the like), rows keyed by
    class as checks key predictions; None when the model has no such method."""
    from monitor.drift.reference import value_key

    try:
        raw = model.get_raw_model()
    except Exception:  # pyfunc flavors without a raw model (custom python models, ...)
        return None
    if not callable(getattr(raw, "predict_proba", None)) or not hasattr(raw, "classes_"):
        return None
    classes = [value_key(c) for c in raw.classes_]

    def proba(frame: pd.DataFrame) -> list[dict[str, float]]:
        return [dict(zip(classes, map(float, row), strict=True)) for row in raw.predict_proba(typed(frame))]

    return proba


class AliasPoller:
    """Checks the alias every ``interval`` seconds and swaps in a newly promoted version."""

    def __init__(
        self,
        loader: ChampionLoader,
        slot: ModelSlot,
        interval: float,
        gate: RequestGate | None = None,
        canary: CanarySlot | None = None,
    ) -> None:
        self.loader = loader
        self.slot = slot
        self.interval = interval
        self.gate = gate or RequestGate()
        self.canary = canary
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="mlwatch-alias-poller", daemon=True)

    def check(self) -> bool:
        """Swap when the champion moved; True when a new version now serves."""
        version = self.loader.champion()
        current = self.slot.current
        if version is None or (current is not None and current.version == version):
            return False
        loaded = self.loader.load(version)
        self.slot.swap(loaded)
        log.warning("now serving version %s (was %s)", version, current.version if current else None)
        return True

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                with self.gate.background():
                    self.check()
            except Exception:  # keep serving the current model; retry at the next poll
                log.exception("could not check or load the champion; still serving the current version")
            self.follow_canary()

    def follow_canary(self) -> None:
        """Load the service's new canary, or drop an ended one (never raises: serving goes on)."""
        if self.canary is None:
            return
        try:
            with self.gate.background():
                self.canary.refresh()
        except Exception:
            log.exception("could not follow the canary stage; serving as before")


def parse_payload(body: bytes) -> pd.DataFrame:
    """A DataFrame from an MLflow scoring payload; ValueError says what was expected."""
    import pandas as pd

    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the body is not valid JSON: {exc}") from exc
    keys = [k for k in FORMATS if isinstance(payload, dict) and k in payload]
    if len(keys) != 1:
        raise ValueError(f"expected a JSON object with exactly one of {', '.join(FORMATS)}")
    data = payload[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(data, dict) or "data" not in data:
            raise ValueError("dataframe_split: expected {'columns': [...], 'data': [[...], ...]}")
        return pd.DataFrame(data["data"], columns=data.get("columns"))
    if isinstance(data, dict):
        return pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in data.items()})
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return pd.DataFrame.from_records(data)
    raise ValueError(f"{keys[0]}: expected a list of records or a mapping of column to values")


def listed(predictions: Any) -> list[Any]:
    """A model's predictions as a list of plain values (records for a DataFrame)."""
    if hasattr(predictions, "to_dict") and hasattr(predictions, "columns"):
        return list(predictions.to_dict(orient="records"))
    return list(predictions.tolist()) if hasattr(predictions, "tolist") else list(predictions)


def create_app(
    slot: ModelSlot,
    service: str,
    model: str,
    tracker: Tracker | None,
    gate: RequestGate | None = None,
    shadow: ShadowProcess | None = None,
    canary: CanarySlot | None = None,
) -> Starlette:
    """The scoring app over ``slot``; predictions are logged to ``tracker`` when given; the
    poller working through ``gate`` yields to its requests; answered requests are offered
    to ``shadow`` when a version is in shadow; ``canary`` answers its share of them."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    requests = gate or RequestGate()

    async def invocations(request: Request) -> Response:
        with requests.request():
            return await _score(request, slot.current, model, tracker, shadow, canary)

    async def ping(_: Request) -> Response:
        return JSONResponse("", 200 if slot.current else 503)

    async def health(_: Request) -> Response:
        loaded = slot.current
        body = {"status": "ok" if loaded else "loading", "model": model, "version": loaded and loaded.version}
        return JSONResponse(body, 200 if loaded else 503)

    async def version(_: Request) -> Response:
        loaded = slot.current
        return JSONResponse(
            {
                "service": service,
                "model": model,
                "version": loaded and loaded.version,
                "loaded_at": loaded and loaded.loaded_at,
                "shadow": asdict(shadow.status()) if shadow is not None else None,
                "canary": _canary_status(canary),
            }
        )

    routes = [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def _canary_status(canary: CanarySlot | None) -> dict[str, Any] | None:
    """The canary serving now, as ``/version`` shows it."""
    serving = canary.current if canary is not None else None
    if serving is None:
        return None
    return {"stage_id": serving.stage_id, "version": serving.model.version, "share": serving.share}


def _error(status: int, code: str, message: str) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error_code": code, "message": message}, status)


async def _score(
    request: Request,
    loaded: LoadedModel | None,
    model: str,
    tracker: Tracker | None,
    shadow: ShadowProcess | None,
    canary: CanarySlot | None = None,
) -> Response:
    """Answer one scoring request with ``loaded`` (or the canary, for the requests routed to
    it), which serves it to the end whatever is swapped in meanwhile; then offer it to
    ``shadow`` (a queue append: the reply waits for no shadow)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    from retrain.canary import routed

    if loaded is None:
        return _error(503, "MODEL_NOT_READY", f"model {model!r} has no champion loaded yet")
    try:
        body = await request.body()
        frame = parse_payload(body)
    except ValueError as exc:
        return _error(400, "BAD_REQUEST", str(exc))
    base = request.headers.get("x-request-id")
    serving = canary.current if canary is not None else None
    shadowed = shadow is not None and shadow.active
    if (shadowed or serving is not None) and base is None:  # rows pair, and routing sticks, by request id
        base = tracker.new_request_id() if tracker is not None else uuid.uuid4().hex
    chosen = serving.model if serving is not None and base is not None and routed(base, serving.share) else loaded
    start = time.perf_counter()
    try:
        predictions = listed(await run_in_threadpool(chosen.predict, frame))
    except Exception as exc:  # a schema mismatch or a model's refusal is the caller's input problem
        if chosen is loaded:
            return _error(400, "BAD_REQUEST", f"the model could not score the input: {exc}")
        failed = (time.perf_counter() - start) * 1000.0 / max(1, len(frame))
        log.warning("canary version %s failed a request; the champion answers it: %s", chosen.version, exc)
        if tracker is not None:
            await run_in_threadpool(_log_failure, tracker, base, frame, failed, chosen.version)
        chosen, start = loaded, time.perf_counter()
        try:
            predictions = listed(await run_in_threadpool(loaded.predict, frame))
        except Exception as again:
            return _error(400, "BAD_REQUEST", f"the model could not score the input: {again}")
    latency = (time.perf_counter() - start) * 1000.0 / max(1, len(frame))
    probabilities = None
    if tracker is not None:
        # Before answering, so that it counts as the request's work (a version being loaded
        # waits for it): class probabilities cost a second pass over the rows.
        probabilities = await run_in_threadpool(_log, tracker, base, frame, predictions, latency, chosen)
    if shadowed and shadow is not None and base is not None:
        shadow.offer(body, base, chosen.version, predictions, probabilities)
    return JSONResponse({"predictions": predictions}, headers={"X-Model-Version": chosen.version})


def _log_failure(tracker: Tracker, base: str | None, frame: pd.DataFrame, latency: float, version: str) -> None:
    """Log each row a canary failed as an error of its version (its own request ids: the
    champion's answer to the same rows is logged under theirs)."""
    for i, features in enumerate(frame.to_dict(orient="records")):
        request_id = f"{base}-{i}-canary" if base else None
        tracker.log(features, None, latency_ms=latency, model_version=version, request_id=request_id, status="error")


def _log(
    tracker: Tracker, base: str | None, frame: pd.DataFrame, predictions: list[Any], latency: float, loaded: LoadedModel
) -> list[dict[str, float]] | list[None]:
    """Log each scored row, with its class probabilities where the model gives them (returned)."""
    probabilities: list[dict[str, float]] | list[None] = [None] * len(frame)
    if loaded.predict_proba is not None:
        try:
            probabilities = loaded.predict_proba(frame)
        except Exception:  # the answer stands; only the probabilities are missing from the log
            log.warning("class probabilities of version %s failed; logged without them", loaded.version, exc_info=True)
    rows = frame.to_dict(orient="records")
    for i, (features, prediction, proba) in enumerate(zip(rows, predictions, probabilities, strict=False)):
        tracker.log(
            features,
            prediction,
            probabilities=proba,
            latency_ms=latency,
            model_version=loaded.version,
            request_id=f"{base}-{i}" if base else None,
        )
    return probabilities


def run_server(
    store: Store,
    settings: Settings,
    service: str,
    *,
    host: str = "127.0.0.1",
    port: int = 5001,
    poll_interval: float = 5.0,
    log_level: str = "warning",
    probabilities: bool = True,
    shadow: bool = True,
    shadow_timeout: float | None = 60.0,
) -> None:
    """Serve ``service``'s champion until interrupted; ``probabilities``: log class probabilities;
    ``shadow``: score the version the service has in shadow beside it, in a process of its own
    (``retrain.shadow_process``), stopped and its stage ended when one of its model calls runs
    past ``shadow_timeout`` seconds (None: never)."""
    import uvicorn
    from threadpoolctl import threadpool_limits

    from monitor.sdk import Tracker
    from retrain.canary import CanarySlot
    from retrain.shadow_process import ShadowProcess
    from retrain.stages import record_crash

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    sys.setswitchinterval(0.001)  # hand the GIL back quickly from what cannot yield (C code of a load)
    # One thread per prediction: scoring requests are small, and OpenMP pools spinning on every
    # core (one per model loaded) would take the CPU from requests in flight during a swap.
    threadpool_limits(limits=1)
    found = store.get_service(service)
    model = model_name(found)
    client = make_client(settings.mlflow_tracking_uri, store)
    loader = ChampionLoader(client, model, settings.mlflow_tracking_uri, probabilities=probabilities)
    slot = ModelSlot()
    gate = RequestGate()

    def canary_failed(stage: StageRecord, error: str) -> None:
        record_crash(store, settings, found, stage, error)

    canary = CanarySlot(store, found, loader, on_load_error=canary_failed)
    poller = AliasPoller(loader, slot, poll_interval, gate, canary)
    try:
        poller.check()
    except Exception:
        log.exception("could not load the champion of %s yet; will retry", model)
    poller.follow_canary()
    tracker = Tracker(found.name, spool_dir=os.path.join(settings.home, "spool", f"serve-{found.name}"))
    poller.thread.start()
    scorer = ShadowProcess(store, settings, found, interval=poll_interval, timeout=shadow_timeout) if shadow else None
    if scorer is not None:
        scorer.start()
    try:
        app = create_app(slot, found.name, model, tracker, gate, scorer, canary)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        poller.stop.set()
        if scorer is not None:
            scorer.close()
        tracker.close()
