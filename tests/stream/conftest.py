"""Fixtures of the stream tests: the real NATS server, a stream of each test's own, a consumer process.

The NATS server with JetStream is ``MLWATCH_TEST_NATS_URL`` (default
``nats://127.0.0.1:4222``); where none answers the tests skip with that reason, unless
``MLWATCH_REQUIRE_NATS=1`` (CI). Every test gets a stream, subjects and services named with
a fresh uuid, so tests (and test runs) sharing the server never see each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import pytest

from monitor.records import Feature
from monitor.store import Store
from tests.conftest import unavailable

T = TypeVar("T")
DEFAULT_NATS = "nats://127.0.0.1:4222"


def _nats_problem(url: str) -> str | None:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=3):
            return None
    except OSError as exc:
        return f"NATS not reachable at {url} (set MLWATCH_TEST_NATS_URL): {exc}"


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The URL of a reachable NATS server, or skip (fail where MLWATCH_REQUIRE_NATS=1)."""
    url = os.environ.get("MLWATCH_TEST_NATS_URL", DEFAULT_NATS)
    problem = _nats_problem(url)
    if problem:
        unavailable(problem, "MLWATCH_REQUIRE_NATS")
    return url


def nats_call(url: str, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """``await action(js)`` on a JetStream context of a fresh connection to ``url``."""
    import nats

    async def call() -> T:
        nc = await nats.connect(url, max_reconnect_attempts=1)
        try:
            return await action(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(call())


@dataclass
class Stream:
    """A test's own stream: its name, a registered service, and the subjects of both."""

    url: str
    name: str
    service: str
    unknown: str  # a service that is never registered, with subjects in the stream

    @property
    def subjects(self) -> list[str]:
        """The subjects the stream is created with."""
        return [f"{kind}.{name}" for name in (self.service, self.unknown) for kind in ("predictions", "labels")]

    def publish(self, subject: str, bodies: list[bytes]) -> None:
        """Publish ``bodies`` on ``subject``, each acknowledged by the stream."""

        async def send(js: Any) -> None:
            for body in bodies:
                await js.publish(subject, body, stream=self.name)

        nats_call(self.url, send)

    def dead_letters(self, count: int, timeout: float = 10.0) -> list[Any]:
        """The first ``count`` dead letters (messages with subject, headers, data), oldest first."""

        async def read(js: Any) -> list[Any]:
            sub = await js.pull_subscribe("mlwatch.dead.>", stream=f"{self.name}_DEAD")
            found: list[Any] = []
            deadline = time.monotonic() + timeout
            while len(found) < count and time.monotonic() < deadline:
                with contextlib.suppress(asyncio.TimeoutError):
                    found += await sub.fetch(count - len(found), timeout=1.0)
            for msg in found:
                await msg.ack()
            return found

        return nats_call(self.url, read)


@pytest.fixture
def stream(nats_url: str) -> Iterator[Stream]:
    """A uniquely named stream (created by the consumer, or by the test), deleted afterwards."""
    tag = uuid.uuid4().hex[:10]
    made = Stream(nats_url, f"T_{tag}", f"svc-{tag}", f"nosuch-{tag}")
    yield made

    async def delete(js: Any) -> None:
        from nats.js.errors import NotFoundError

        for name in (made.name, f"{made.name}_DEAD"):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)

    nats_call(nats_url, delete)


def register(store_url: str, name: str) -> Store:
    """A migrated store at ``store_url`` with service ``name`` (numerical x, categorical c, text t)."""
    store = Store.open(store_url, migrate=True)
    features = (Feature("x", "numerical"), Feature("c", "categorical"), Feature("t", "text"))
    store.upsert_service(name, task="classification", features=features)
    return store


@dataclass
class Consuming:
    """A running ``mlwatch consume`` process; its stderr goes to a file the test can read."""

    process: subprocess.Popen[str]
    log: Path

    def wait_started(self, timeout: float = 20.0) -> None:
        """Wait until the consumer is bound to its durable consumer and fetching."""
        wait_for(lambda: "consuming " in self.log.read_text(), timeout, self.describe)

    def stop(self) -> dict[str, int]:
        """SIGTERM, then the counters it printed with --json."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=20)
        assert self.process.returncode == 0, self.describe()
        stats: dict[str, int] = json.loads(out.strip().splitlines()[-1])
        return stats

    def kill(self) -> None:
        """SIGKILL where it still runs (teardown)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def describe(self) -> str:
        """The consumer's log, for a failing assertion."""
        return f"mlwatch consume (exit {self.process.poll()}) logged:\n{self.log.read_text()[-4000:]}"


@pytest.fixture
def consumers(tmp_path: Path) -> Iterator[Callable[..., Consuming]]:
    """Start ``mlwatch consume`` processes with the given arguments; killed at the end if still running."""
    started: list[Consuming] = []

    def start(store_url: str, stream: Stream, *args: str) -> Consuming:
        command = ["--stream", stream.url, "--stream-name", stream.name]
        command += [f"--stream-subject={s}" for s in stream.subjects] + ["--json", *args]
        started.append(consume_process(tmp_path, store_url, command, len(started)))
        return started[-1]

    yield start
    for consuming in started:
        consuming.kill()


def consume_process(directory: Path, store_url: str, args: list[str], number: int) -> Consuming:
    """``mlwatch consume ARGS`` on ``store_url``, run in ``directory``; its stderr in ``consume-<number>.log``."""
    log = directory / f"consume-{number}.log"
    env = {**os.environ, "MLWATCH_STORE_URL": store_url, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    command = [sys.executable, "-m", "monitor", "consume", *args]
    with log.open("w") as err:
        process = subprocess.Popen(command, cwd=directory, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    return Consuming(process, log)


def wait_for(condition: Callable[[], bool], timeout: float, describe: Callable[[], str] = lambda: "") -> None:
    """Poll ``condition`` until it holds, or fail after ``timeout`` seconds saying what was seen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {timeout} s; {describe()}")
        time.sleep(0.05)
