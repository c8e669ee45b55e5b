"""A refused token (401/403) loses nothing: the records wait in the spool until a valid token
comes, by ``Tracker.set_token`` or a token file, and the warning comes once a minute at most.
Against a real API server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monitor.sdk import DeliveryOptions, Tracker
from tests.collectors.conftest import register, stored
from tests.conftest import RunningServer

FAST = DeliveryOptions(flush_interval=0.05, backoff_initial=0.05, backoff_max=0.2)


class FakeTimer:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _log(tracker: Tracker, prefix: str, count: int) -> set[str]:
    for i in range(count):
        tracker.log({"x": float(i)}, request_id=f"{prefix}-{i}")
    return {f"{prefix}-{i}" for i in range(count)}


def test_records_refused_for_a_wrong_token_wait_in_the_spool_and_go_once_set_token_gives_a_valid_one(
    api: RunningServer, tmp_path: Path
) -> None:
    register(api, "rotated", [])
    tracker = Tracker("rotated", url=api.url, token="wrong", spool_dir=tmp_path, options=FAST, flush_at_exit=False)
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
