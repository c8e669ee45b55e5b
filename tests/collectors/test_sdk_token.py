"""A refused token (401/403) loses nothing: the records wait in the spool until a valid token
comes, by ``Tracker.set_token`` or a token file, and the warning comes once a minute at most.
Against a real API server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from monitor.sdk import DeliveryOptions, Tracker
from monitor.sdk.transport import Unauthorized
from tests.collectors.conftest import register, stored
from tests.conftest import RunningServer

FAST = DeliveryOptions(flush_interval=0.05, backoff_initial=0.05, backoff_max=0.2)


class FakeTimer:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HeldTransport:
    """Takes only the token "good"; the next send after ``hold()`` waits, in flight, until ``release``."""

    def __init__(self) -> None:
        self.token = "wrong"
        self.sent: list[str] = []
        self.in_flight = threading.Event()
        self.release = threading.Event()
        self._hold = False

    def hold(self) -> None:
        self._hold = True

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        token = self.token  # taken as the request leaves, as HttpClient takes its headers
        if self._hold:
            self._hold = False
            self.in_flight.set()
            self.release.wait(10)
        if token != "good":
            raise Unauthorized(401, "invalid token")
        self.sent.extend(r["request_id"] for r in records)

    def set_token(self, token: str | None) -> None:
        self.token = token or ""

    def close(self) -> None:
        pass

    def after_fork(self) -> None:
        pass


def _log(tracker: Tracker, prefix: str, count: int) -> set[str]:
    for i in range(count):
        tracker.log({"x": float(i)}, request_id=f"{prefix}-{i}")
    return {f"{prefix}-{i}" for i in range(count)}


def test_records_refused_for_a_wrong_token_wait_in_the_spool_and_go_once_set_token_gives_a_valid_one(
    api: RunningServer, tmp_path: Path
) -> None:
    register(api, "rotated", [])
    # a backoff longer than the test: between the flushes nothing is retried, so the batch is
    # among the spool's files when stats() looks (claimed to be sent again, it is not), and
    # set_token must send it at once, past the backoff
    patient = DeliveryOptions(flush_interval=0.05, backoff_initial=60.0, backoff_max=60.0)
    tracker = Tracker("rotated", url=api.url, token="wrong", spool_dir=tmp_path, options=patient, flush_at_exit=False)
    ids = _log(tracker, "wait", 30)
    assert not tracker.flush(5)
    stats = tracker.stats()
    assert (stats.token_refused, stats.server_down, stats.rejected, stats.quarantined) == (True, False, 0, 0)
    assert stats.spooled_bytes > 0 and stored(api, "rotated") == []
    tracker.set_token(api.token)
    assert tracker.flush(10)
    assert {r.request_id for r in stored(api, "rotated")} == ids
    assert (tracker.stats().token_refused, tracker.stats().spooled_bytes) == (False, 0)
    tracker.close()


def test_a_token_set_while_a_batch_is_sent_with_the_old_one_is_tried_at_once_not_after_the_backoff(
    tmp_path: Path,
) -> None:
    transport = HeldTransport()
    slow = DeliveryOptions(flush_interval=0.05, backoff_initial=30.0, backoff_max=30.0)
    tracker = Tracker("held", transport=transport, spool_dir=tmp_path, options=slow, flush_at_exit=False)
    ids = _log(tracker, "held", 3)
    assert not tracker.flush(5) and tracker.stats().token_refused  # backing off for 30 s now
    transport.hold()
    retrying = threading.Thread(target=tracker.flush, args=(10,))
    retrying.start()  # the flush's retry goes out with the old token and waits for its answer
    assert transport.in_flight.wait(10)
    tracker.set_token("good")
    transport.release.set()  # the answer to the old token, 401, backs off again: 30 s
    assert tracker.flush(5)  # but set_token asked for a retry after that attempt began
    assert set(transport.sent) == ids
    retrying.join(10)
    tracker.close()


def test_a_token_file_is_read_again_when_the_server_refuses_the_token_it_held(
    api: RunningServer, tmp_path: Path
) -> None:
    register(api, "mounted", [])
    secret = tmp_path / "token"
    secret.write_text("expired\n")
    tracker = Tracker(
        "mounted", url=api.url, token_file=secret, spool_dir=tmp_path / "spool", options=FAST, flush_at_exit=False
    )
    ids = _log(tracker, "file", 20)
    assert not tracker.flush(5) and tracker.stats().token_refused
    secret.write_text(f"{api.token}\n")  # the secret is rotated in place, as a mounted one is
    assert tracker.flush(10)
    assert {r.request_id for r in stored(api, "mounted")} == ids
    tracker.close()


def test_a_refused_token_is_warned_about_at_most_once_a_minute(
    api: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    register(api, "quiet", [])
    timer = FakeTimer()
    tracker = Tracker(
        "quiet", url=api.url, token="wrong", spool_dir=tmp_path, options=FAST, timer=timer, flush_at_exit=False
    )
    _log(tracker, "q", 5)
    warned = []
    with caplog.at_level(logging.WARNING, logger="monitor.sdk"):
        for step in (0.0, 1.0, 30.0, 28.0, 2.0, 59.0, 1.0):  # each flush tries the spool once more
            timer.now += step
            assert not tracker.flush(5)
            warned.append(sum("refused the token" in r.getMessage() for r in caplog.records))
    assert warned == [1, 1, 1, 1, 2, 2, 3]  # at 0 s, at 61 s, at 121 s
    tracker.close()


def test_set_token_on_a_tracker_that_writes_straight_into_a_store_is_refused(tmp_path: Path) -> None:
    tracker = Tracker("direct", store_url=f"sqlite:///{tmp_path / 'd.db'}", spool_dir=tmp_path, flush_at_exit=False)
    with pytest.raises(ValueError, match=r"transport \(StoreTransport\) takes no token"):
        tracker.set_token("abc")
    tracker.close()
