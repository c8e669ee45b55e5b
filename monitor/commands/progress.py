"""Progress of a long CLI phase on stderr, so that stdout stays the command's result.

On a terminal one line is redrawn in place, at most ten times a second; anywhere else
(CI logs, ``2> file``) a line is written every ``every`` seconds and once at the end, so a
log shows the phase moving without a line per chunk.

    >>> with Progress("checking", total=1_000_000) as progress:
    ...     progress.advance(5000)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType

import click

REDRAW_S = 0.1
LOG_EVERY_S = 10.0


class Progress:
    """A rate-limited progress line for one phase: rows done, of how many, how fast."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "rows",
        tty: bool | None = None,
        every: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit, self.clock = label, total, unit, clock
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = REDRAW_S if self.tty else every
        self.done = 0
        self.started = self.shown = clock()

    def advance(self, count: int) -> None:
        """Count ``count`` more; redraw (or log) when enough time has passed."""
        self.done += count
        now = self.clock()
        if now - self.shown >= self.every:
            self.shown = now
            self._write(self.line(now), final=False)

    def line(self, now: float) -> str:
        """``checking: 340,000/1,000,000 rows (34%), 52,000 rows/s``."""
        seconds = max(now - self.started, 1e-9)
        of = f"/{self.total:,}" if self.total else ""
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        return f"{self.label}: {self.done:,}{of} {self.unit}{share}, {self.done / seconds:,.0f} {self.unit}/s"

    def _write(self, text: str, *, final: bool) -> None:
        if self.tty:
            click.echo(f"\r\x1b[K{text}", err=True, nl=final)
        else:
            click.echo(text, err=True)

    def finish(self) -> None:
        """The last line, with the phase's time."""
        now = self.clock()
        self._write(f"{self.line(now)} in {now - self.started:.1f} s", final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.finish()
        elif self.tty:
            click.echo(err=True)  # leave the partial line before the error message
