"""Edge devices offline for a day: records keep their time, the spool keeps its bounds, upload resumes in order.

The link is cut by sending to a port where nothing listens (connections refused); it
returns when a real ``mlwatch server`` starts on that port. The day passes on an injected
clock, one record a simulated minute.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.sdk import DeliveryOptions, Tracker
from monitor.sdk.spool import Spool
from tests.collectors.conftest import launch, register
from tests.conftest import RunningServer, free_port

FAST = DeliveryOptions(flush_interval=0.05, backoff_initial=0.05, backoff_max=0.3)
# retries only when the test flushes: none between the server's start and its service's registration
PATIENT = DeliveryOptions(flush_interval=0.05, backoff_initial=3600.0, backoff_max=3600.0)
DAY, MINUTE = 86400, 60


class Clock:
    """Wall-clock time that the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Link:
    """A server URL that refuses connections until ``restore`` starts a real server there."""

    tmp: Path
    port: int = 0
    token: str = ""
    server: RunningServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.tmp / 'mlwatch.db'}"

    def restore(self, service: str) -> RunningServer:
        process = launch(self.tmp, self.store_url, self.port, self.token)
        self.server = RunningServer(self.url, self.token, self.store_url, process, self.tmp)
        register(self.server, service, ["minute"])
        return self.server

    def arrived(self) -> list[tuple[str, float]]:
        """(request id, timestamp) of every stored prediction, in the order the server stored them."""
        with sqlite3.connect(self.tmp / "mlwatch.db") as db:
            return [(r, float(t)) for r, t in db.execute("SELECT request_id, ts FROM predictions ORDER BY id")]


@pytest.fixture
def link(tmp_path: Path) -> Iterator[Link]:
    cut = Link(tmp_path, free_port(), f"t-{uuid.uuid4().hex}")
    yield cut
    if cut.server is not None:
        cut.server.stop()


def _a_day_offline(tracker: Tracker, clock: Clock, start: float, flush_every: int) -> list[tuple[str, float]]:
    """Log one record a simulated minute for 24 h; the sender spools them every ``flush_every`` minutes."""
    logged = []
    for minute in range(DAY // MINUTE):
        clock.now = start + minute * MINUTE
        rid = tracker.log({"minute": minute}, prediction=minute % 3, request_id=f"m{minute:04d}")
        logged.append((str(rid), clock.now))
        if (minute + 1) % flush_every == 0:
            assert not tracker.flush(5)  # refused: into the spool, at this minute
    return logged


def _offline_tracker(link: Link, clock: Clock, spool: Path, **kwargs: object) -> Tracker:
    return Tracker(
        "edge",
        url=link.url,
        token=link.token,
        spool_dir=spool,
        options=PATIENT,
        clock=clock,
        flush_at_exit=False,
        **kwargs,  # type: ignore[arg-type]
    )


UPLOADER = """
import sys
from monitor.sdk import Tracker
tracker = Tracker("edge", url=sys.argv[1], token=sys.argv[2], spool_dir=sys.argv[3], flush_at_exit=False)
print("flushed", tracker.flush(120), flush=True)
"""


def test_a_day_offline_arrives_oldest_first_with_its_own_timestamps_and_a_killed_upload_resumes(
    link: Link, tmp_path: Path
) -> None:
    spool, start = tmp_path / "spool", float(int(time.time()) - DAY - 3600)  # a day that ended an hour ago
    clock = Clock(start)
    device = _offline_tracker(link, clock, spool)
    logged = _a_day_offline(device, clock, start, flush_every=5)  # 288 batches: an upload to cut short
    assert device.stats().server_down and len(Spool(spool, 1 << 30).files()) == len(logged) // 5
    device.close(1)

    link.restore("edge")
    uploader = subprocess.Popen(
        [sys.executable, "-c", UPLOADER, link.url, link.token, str(spool)], stdout=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while len(link.arrived()) < 100 and time.monotonic() < deadline and uploader.poll() is None:
        time.sleep(0.01)
    uploader.send_signal(signal.SIGKILL)  # the device loses power mid-upload
    uploader.wait()
    partial = link.arrived()
    assert 100 <= len(partial) < len(logged), len(partial)
    assert partial == logged[: len(partial)]  # oldest first, nothing skipped

    resumed = Tracker("edge", url=link.url, token=link.token, spool_dir=spool, options=FAST, flush_at_exit=False)
    assert resumed.flush(60)
    arrived = link.arrived()
    assert arrived == logged  # every record once, in order, stamped when it was logged, not when sent
    assert max(ts for _, ts in arrived) < time.time() - 3000
    resumed.close()


def test_records_past_the_spools_max_age_are_dropped_and_counted_and_the_rest_arrive(
    link: Link, tmp_path: Path
) -> None:
    start = float(int(time.time()) - DAY - 3600)
    clock = Clock(start)
    device = _offline_tracker(link, clock, tmp_path / "spool", spool_max_age=6 * 3600)
    logged = _a_day_offline(device, clock, start, flush_every=7)  # batches that straddle the cutoff too
    clock.now += MINUTE  # the link returns a minute after the last record
    cutoff = clock.now - 6 * 3600
    link.restore("edge")
    assert device.flush(30)
    young = [(rid, ts) for rid, ts in logged if ts >= cutoff]
    assert link.arrived() == young and len(young) == 6 * 60
    stats = device.stats()
    expired = len(logged) - len(young)
    assert (stats.dropped_spool_expired, stats.dropped_spool_full, stats.spooled_bytes) == (expired, 0, 0)
    device.close()


def test_past_the_spools_size_bound_the_oldest_records_are_dropped_and_counted_and_the_newest_arrive(
    link: Link, tmp_path: Path
) -> None:
    start = float(int(time.time()) - DAY - 3600)
    clock = Clock(start)
    bound = 40_000  # bytes: a few hours of batches of five records
    device = _offline_tracker(link, clock, tmp_path / "spool", spool_max_bytes=bound)
    logged = _a_day_offline(device, clock, start, flush_every=5)
    held = device.stats()
    assert 0 < held.spooled_bytes <= bound
    link.restore("edge")
    assert device.flush(30)
    arrived, stats = link.arrived(), device.stats()
    assert 0 < len(arrived) < len(logged) // 2
    assert arrived == logged[-len(arrived) :]  # the newest, in order; the oldest went first
    assert (stats.dropped_spool_full, stats.dropped_spool_expired) == (len(logged) - len(arrived), 0)
    device.close()


def test_a_spool_max_age_that_is_not_a_positive_number_of_seconds_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="spool max_age must be a positive number of seconds or None, got 0"):
        Tracker("edge", url="http://127.0.0.1:9", spool_dir=tmp_path, spool_max_age=0, flush_at_exit=False)


def test_a_link_down_for_more_than_a_thousand_retries_keeps_backing_off_without_sender_errors(
    link: Link, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start = float(int(time.time()) - 3600)
    clock = Clock(start)
    device = _offline_tracker(link, clock, tmp_path / "spool")
    logged = [(str(device.log({"minute": 0}, request_id="a0000")), clock.now)]
    for attempt in range(1100):  # at 30 s a retry, 9 hours offline: 2 ** 1024 overflowed a float
        clock.now = start + attempt
        assert not device.flush(5)  # one more refused attempt
    assert not [r for r in caplog.records if "sender error" in r.getMessage()]
    link.restore("edge")
    assert device.flush(30)
    assert link.arrived() == logged
    device.close()


def test_a_spool_whose_directory_was_removed_holds_nothing_instead_of_failing(tmp_path: Path) -> None:
    """A sender still running while its process exits may find the spool's directory gone
    (a temporary one removed first): it holds nothing, and the sender says no error."""
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.write([{"request_id": "r1", "features": {"x": 1}}])
    assert len(spool.files()) == 1
    spool.files()[0].unlink()
    (tmp_path / "spool").rmdir()
    assert spool.files() == [] and spool.claim() is None
