"""The demo's script: prepare, train the first model, start everything, replay traffic."""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.config import Settings
from monitor.demo.config import SERVICE, WEBHOOK_SECRET_ENV, DemoPorts, demo_config
from monitor.demo.data import CreditData, TrafficSource
from monitor.demo.receiver import DemoReceiver
from monitor.demo.stack import Stack
from monitor.demo.traffic import Batch, Timeline, Traffic
from monitor.settings import load_settings
from monitor.store import Store

REFERENCE_ROWS = 5000


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs."""

    workdir: Path
    speed: float = 60.0
    minutes: float | None = None
    ports: DemoPorts = field(default_factory=DemoPorts)
    token: str | None = None
    rows_per_second: float = 40.0
    open_browser: bool = False
    stable_hours: float = 2.0
    ramp_hours: float = 2.0
    label_delay_hours: float = 0.25
    source: TrafficSource | None = None
    """Rows to send instead of the stable-then-ramp timeline (``stable_hours``, ``ramp_hours``)."""
    configure: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Edits the demo's configuration before it is written (another policy, other rules)."""
    on_batch: Callable[[Batch], None] | None = None


class Demo:
    """Runs the whole loop locally until its time is up or it is interrupted."""

    def __init__(self, options: DemoOptions, echo: Callable[[str], None] = print) -> None:
        self.options = options
        self.echo = echo
        self.home = options.workdir / ".mlwatch"
        self.token = options.token or f"mlw_{secrets.token_urlsafe(24)}"
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()  # Standard Webhooks form
        self.receiver = DemoReceiver(options.ports.receiver, self.secret, echo)
        self.stack = Stack(options.workdir, self._environment())
        self.traffic: Traffic | None = None

    def run(self) -> None:
        """Prepare, start, replay; always stops every process it started."""
        try:
            self.start()
            self._replay()
        finally:
            self.stop()

    def start(self) -> Settings:
        """Write the configuration, start every process and train the first model; no traffic yet."""
        settings = self._prepare()
        self._start(settings)
        return settings

    def stop(self) -> None:
        """Stop traffic, processes and the receiver."""
        if self.traffic:
            self.traffic.stop.set()
        self.stack.stop()
        self.receiver.stop()

    def _environment(self) -> dict[str, str]:
        api = f"http://127.0.0.1:{self.options.ports.api}"
        return {
            **os.environ,
            "MLWATCH_CONFIG": str(self.home / "demo.yaml"),
            "MLWATCH_BOOTSTRAP_TOKEN": self.token,
            "MLWATCH_URL": api,
            "MLWATCH_TOKEN": self.token,
            WEBHOOK_SECRET_ENV: self.secret,
        }

    def _prepare(self) -> Settings:
        self.home.mkdir(parents=True, exist_ok=True)
        config = demo_config(str(self.home), self.options.ports, self.options.speed, self.options.rows_per_second)
        if self.options.configure is not None:
            config = self.options.configure(config)
        (self.home / "demo.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        settings = load_settings(self.home / "demo.yaml", environ=self.stack.env)
        self.echo(f"[1/4] store and MLflow under {self.home}")
        from monitor.drift.reference import keep_reference
        from monitor.server.app import sync_services

        store = Store.open(settings.store_url)
        sync_services(settings, store)
        reference = CreditData(seed=0).sample(REFERENCE_ROWS, drift=0.0)
        keep_reference(store, store.get_service(SERVICE), reference, source="demo generator (drift=0)")
        store.close()
        return settings

    def _start(self, settings: Settings) -> None:
        ports = self.options.ports
        self.receiver.start()
        server = self.stack.start("server", "server")
        self.stack.wait_http(server, f"http://127.0.0.1:{ports.api}/healthz")
        self.stack.start("worker", "worker", "--log-level", "warning")
        self.echo("[2/4] training and registering the first model (a retrain job run by the worker)")
        self._first_model(settings)
        serve = self.stack.start("serve", "serve", SERVICE, "--port", str(ports.serve), "--poll-interval", "2")
        self.stack.wait_http(serve, f"http://127.0.0.1:{ports.serve}/ping")
        self.stack.start("agent", "agent", "--interval", "5")
        dashboard = self.stack.start("dashboard", "dashboard", "--port", str(ports.dashboard))
        self.stack.wait_http(dashboard, f"http://127.0.0.1:{ports.dashboard}/healthz")
        self.echo("[3/4] running:")
        self.echo(f"  dashboard  http://127.0.0.1:{ports.dashboard}   (log in with the token below)")
        self.echo(f"  API        http://127.0.0.1:{ports.api}/docs")
        self.echo(f"  model      http://127.0.0.1:{ports.serve}/invocations")
        self.echo(f"  webhooks   http://127.0.0.1:{self.receiver.port}/hooks (events listed at GET /)")
        self.echo(f"  token      {self.token}   (admin)")
        self.echo(
            f"  CLI        MLWATCH_URL=http://127.0.0.1:{ports.api} MLWATCH_TOKEN=<token> mlwatch check {SERVICE}"
            "   (and retrain, promote, rollback)"
        )
        if self.options.open_browser:
            webbrowser.open(f"http://127.0.0.1:{ports.dashboard}")

    def _first_model(self, settings: Settings) -> None:
        from retrain.actions import get_job, list_models, promote, request_retrain

        store = Store.open(settings.store_url)
        try:
            job, _ = request_retrain(store, settings, SERVICE, actor="demo", trigger="manual")
            while (job := get_job(store, job.id)).active:
                time.sleep(1.0)
            if job.status != "succeeded":
                raise RuntimeError(f"the first training job {job.status}: {job.error}")
            overview = list_models(store, settings, SERVICE)
            if overview.champion is None and overview.versions:
                promote(store, settings, SERVICE, overview.versions[0].version, actor="demo", reason="first model")
        finally:
            store.close()

    def make_traffic(self) -> Traffic:
        """The replay of these options against the started processes (``run`` sends it)."""
        hour = 3600.0 / self.options.speed
        ports = self.options.ports
        self.traffic = Traffic(
            f"http://127.0.0.1:{ports.serve}",
            f"http://127.0.0.1:{ports.api}",
            self.token,
            Timeline(stable=self.options.stable_hours * hour, ramp=self.options.ramp_hours * hour),
            rows_per_second=self.options.rows_per_second,
            label_delay=self.options.label_delay_hours * hour,
            source=self.options.source,
            window=hour,
            on_batch=self.options.on_batch,
        )
        return self.traffic

    def _replay(self) -> None:
        hour = 3600.0 / self.options.speed
        traffic = self.make_traffic()
        self.echo("[4/4] replaying traffic: like the training data first, then drifting (Ctrl-C stops)")
        run_traffic(traffic, self.options.minutes, min(10.0, hour / 2), self.echo)


def run_traffic(traffic: Traffic, minutes: float | None, every: float, echo: Callable[[str], None]) -> None:
    """Replay in a thread for ``minutes`` (or until interrupted), reporting every ``every`` seconds."""
    thread = threading.Thread(target=traffic.run, name="demo-traffic", daemon=True)
    thread.start()
    deadline = None if minutes is None else time.monotonic() + 60 * minutes
    try:
        while thread.is_alive() and (deadline is None or time.monotonic() < deadline):
            time.sleep(every)
            stats = traffic.stats
            echo(
                f"  traffic    {stats.rows} predictions, {stats.labels} labels, {stats.failures} failed calls, "
                f"by version {stats.versions}"
            )
    finally:
        traffic.stop.set()
        thread.join(15)


def replay_only(model_url: str, speed: float, minutes: float | None, echo: Callable[[str], None] = print) -> None:
    """Replay the demo's traffic to ``model_url`` and its labels to ``$MLWATCH_URL`` (compose's demo profile)."""
    hour = 3600.0 / speed
    api = os.environ.get("MLWATCH_URL", "http://127.0.0.1:8000")
    traffic = Traffic(
        model_url, api, os.environ.get("MLWATCH_TOKEN", ""), Timeline(2 * hour, 2 * hour), label_delay=hour / 4
    )
    echo(f"replaying traffic to {model_url}, labels to {api}")
    run_traffic(traffic, minutes, 10.0, echo)
