"""A server that fails on one record (5xx) or refuses it (4xx) stops nothing: that record is
quarantined and every other one is delivered. Against a real HTTP receiver on port 0 that,
like the API before its fix, answers 500 to any batch holding an integer past 64 bits."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.sdk import DeliveryOptions, Tracker
from monitor.sdk.quarantine import Quarantine
from monitor.sdk.spool import Spool
from tests.collectors.conftest import register, stored
from tests.conftest import RunningServer

FAST = DeliveryOptions(flush_interval=0.05, backoff_initial=0.01, backoff_max=0.05)
# Requests counted: the sender wakes only for a flush, and the backoff left after one (0.8 s)
# outlasts the assertions that follow it.
COUNTED = DeliveryOptions(flush_interval=3600, backoff_initial=0.2, backoff_max=1.0)
POISON = 2**64


class Receiver(ThreadingHTTPServer):
    """An ingest endpoint that stores request ids; 500 for a batch with a poison value, or for all while ``down``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stored: set[str] = set()
        self.requests = 0
        self.down = False
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, records: list[dict[str, Any]]) -> int:
        with self.lock:
            self.requests += 1
            if self.down or any(abs(v) >= 2**63 for r in records for v in r["features"].values()):
                return 500
            self.stored.update(r["request_id"] for r in records)
            return 200


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = self.server.answer(body["records"])
        reply = json.dumps({"accepted": 0} if status == 200 else {"message": "internal error"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _tracker(receiver: Receiver, tmp_path: Path, options: DeliveryOptions = FAST) -> Tracker:
    return Tracker("poisoned", url=receiver.url, spool_dir=tmp_path / "spool", options=options, flush_at_exit=False)


def _quarantined(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "spool" / "quarantine").glob("*.json"))]


def test_a_poison_record_is_quarantined_and_the_3000_good_records_after_it_are_stored(
    receiver: Receiver, tmp_path: Path
) -> None:
    tracker = _tracker(receiver, tmp_path)
    tracker.log({"x1": POISON}, request_id="poison")
    for i in range(3000):
        tracker.log({"x1": i}, request_id=f"good-{i}")
    assert tracker.flush(30)
    assert receiver.stored == {f"good-{i}" for i in range(3000)}
    stats = tracker.stats()
    assert (stats.sent, stats.quarantined, stats.rejected, stats.spooled_bytes) == (3000, 1, 0, 0)
    [kept] = _quarantined(tmp_path)
    assert (kept["status"], [r["request_id"] for r in kept["records"]]) == (500, ["poison"])
    assert stats.quarantined_bytes > 0
    tracker.close()


def test_two_poison_records_in_different_halves_of_a_batch_are_both_quarantined(
    receiver: Receiver, tmp_path: Path
) -> None:
    tracker = _tracker(receiver, tmp_path)
    for i in range(500):
        tracker.log({"x1": POISON if i in (3, 400) else i}, request_id=f"r{i}")
    assert tracker.flush(30)
    assert receiver.stored == {f"r{i}" for i in range(500)} - {"r3", "r400"}
    assert sorted(r["request_id"] for q in _quarantined(tmp_path) for r in q["records"]) == ["r3", "r400"]
    assert tracker.stats().quarantined == 2
    tracker.close()


def test_an_outage_answering_500_to_everything_quarantines_nothing_and_costs_few_requests(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.down = True
    tracker = _tracker(receiver, tmp_path, COUNTED)
    for i in range(500):
        tracker.log({"x1": i}, request_id=f"r{i}")
    assert not tracker.flush(30)
    stats = tracker.stats()
    assert (stats.quarantined, stats.sent, stats.server_down) == (0, 0, True)
    assert receiver.requests <= COUNTED.server_error_attempts + 2 * 9 + 2  # the attempts, then one spine of halves
    before = receiver.requests
    assert not tracker.flush(30)
    assert receiver.requests - before == 1  # split once already: now one attempt a turn until something is taken
    receiver.down = False
    assert tracker.flush(30)
    assert receiver.stored == {f"r{i}" for i in range(500)}
    assert tracker.stats().quarantined == 0
    tracker.close()


def test_an_outage_after_the_server_took_records_is_seen_by_one_probe_and_not_split(
    receiver: Receiver, tmp_path: Path
) -> None:
    tracker = _tracker(receiver, tmp_path, COUNTED)
    tracker.log({"x1": 1}, request_id="before")
    assert tracker.flush(10)
    receiver.down = True
    before = receiver.requests
    for i in range(500):
        tracker.log({"x1": i}, request_id=f"r{i}")
    assert not tracker.flush(30)
    assert receiver.requests - before == COUNTED.server_error_attempts + 1  # the probe re-sends "before": refused
    receiver.down = False
    assert tracker.flush(30)
    assert receiver.stored == {"before"} | {f"r{i}" for i in range(500)}
    assert tracker.stats().quarantined == 0
    tracker.close()


def test_a_batch_keeps_its_count_of_server_errors_in_the_spool_across_processes(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    spool.write([{"request_id": "a"}], strikes=1)
    path, _ = spool.claim() or (None, None)
    assert path is not None and spool.strikes(path) == 1
    spool.release(path, 2)
    again = Spool(tmp_path, max_bytes=10_000)
    path, records = again.claim() or (None, None)
    assert path is not None and (again.strikes(path), records) == (2, [{"request_id": "a"}])


def test_quarantine_past_its_bound_deletes_the_oldest_files_and_counts_their_records(tmp_path: Path) -> None:
    batch = [{"request_id": f"r{i}", "features": {"x": 1.0}} for i in range(10)]
    size = len(json.dumps({"status": 422, "reason": "HTTP 422: bad", "records": batch}).encode())
    quarantine = Quarantine(tmp_path, max_bytes=size * 2)
    for _ in range(5):
        quarantine.put(batch, 422, "HTTP 422: bad")
    assert (quarantine.added, quarantine.dropped, len(quarantine.files())) == (50, 30, 2)
    assert quarantine.size() <= size * 2


def test_the_api_server_stores_every_record_but_the_one_it_cannot_and_that_one_is_quarantined(
    api: RunningServer, tmp_path: Path
) -> None:
    register(api, "poisoned-api", [])
    tracker = Tracker(
        "poisoned-api", url=api.url, token=api.token, spool_dir=tmp_path / "spool", options=FAST, flush_at_exit=False
    )
    tracker.log({"x1": POISON}, request_id="poison")  # a 500 before the server's fix, a 422 after it
    for i in range(3000):
        tracker.log({"x1": i}, request_id=f"good-{i}")
    assert tracker.flush(60)
    assert {r.request_id for r in stored(api, "poisoned-api")} == {f"good-{i}" for i in range(3000)}
    assert (tracker.stats().quarantined, tracker.stats().spooled_bytes) == (1, 0)
    assert [r["request_id"] for q in _quarantined(tmp_path) for r in q["records"]] == ["poison"]
    tracker.close()
