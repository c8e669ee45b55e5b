"""Background work in `mlwatch serve` (alias polls, loading a version) yields to requests."""

from __future__ import annotations

import threading

from retrain.serving import RequestGate


def _work(steps: list[int], n: int) -> None:
    for i in range(n):
        steps.append(i)  # a Python call per step: where the background thread may stop


def _run_in_background(gate: RequestGate, steps: list[int], n: int) -> threading.Thread:
    def run() -> None:
        with gate.background():
            _work(steps, n)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_background_work_waits_while_a_request_is_in_flight_and_goes_on_after() -> None:
    gate, steps = RequestGate(max_pause=30.0), []
    with gate.request():
        thread = _run_in_background(gate, steps, 1000)
        thread.join(0.5)
        assert thread.is_alive() and steps == []  # stopped at its first call
    thread.join(10)
    assert not thread.is_alive() and steps == list(range(1000))


def test_background_work_still_finishes_when_requests_never_stop() -> None:
    gate, steps = RequestGate(max_pause=0.01, min_run=0.001), []
    with gate.request():
        thread = _run_in_background(gate, steps, 200)
        thread.join(30)
        finished_under_load = not thread.is_alive()
    assert finished_under_load and steps == list(range(200))


def test_other_threads_are_not_held_back() -> None:
    gate, steps = RequestGate(max_pause=30.0), []
    with gate.request():
        thread = threading.Thread(target=_work, args=(steps, 100))  # not inside gate.background()
        thread.start()
        thread.join(10)
    assert steps == list(range(100))
