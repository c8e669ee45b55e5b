"""The progress line of long CLI phases: redrawn on a terminal, periodic lines elsewhere."""

from __future__ import annotations

import pytest

from monitor.commands.progress import Progress


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_a_line_is_logged_every_interval_and_once_at_the_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    with Progress("checking", 1000, tty=False, every=10.0, clock=clock) as progress:
        for _ in range(10):
            clock.now += 3.0
            progress.advance(100)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "checking: 400/1,000 rows (40%), 33 rows/s",
        "checking: 800/1,000 rows (80%), 33 rows/s",
        "checking: 1,000/1,000 rows (100%), 33 rows/s in 30.0 s",
    ]


def test_on_a_terminal_one_line_is_redrawn_at_most_ten_times_a_second(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    with Progress("storing", None, tty=True, clock=clock) as progress:
        for _ in range(8):
            clock.now += 0.0625  # 1/16 s, exact in binary
            progress.advance(10)
    err = capsys.readouterr().err  # click drops the erase-line code where stderr is no terminal
    assert err.split("\r")[1:] == [
        "storing: 20 rows, 160 rows/s",
        "storing: 40 rows, 160 rows/s",
        "storing: 60 rows, 160 rows/s",
        "storing: 80 rows, 160 rows/s",
        "storing: 80 rows, 160 rows/s in 0.5 s\n",
    ]


def test_a_failed_phase_ends_the_redrawn_line_before_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    with pytest.raises(RuntimeError, match="bad row"), Progress("checking", 10, tty=True, clock=clock) as progress:
        clock.now += 1.0
        progress.advance(5)
        raise RuntimeError("bad row")
    assert capsys.readouterr().err == "\rchecking: 5/10 rows (50%), 5 rows/s\n"
