"""A directory of JSON batch files, oldest first, held within a byte bound.

Files are named ``<time_ns><seq>-<pid>-<tag>-<records>.json``: the oldest sort first, and
a deleted file still says how many records it held. ``tag`` is the spool's count of 5xx
answers to the batch and the quarantine's HTTP status; files of the older three-field
form (no tag) read as tag 0. ``time_ns`` is read from the folder's ``clock`` (the clock that
stamps the records, so that a spool's age is measured in the records' own time). A file is
written under a hidden name and renamed, so a reader never sees half of one. Past
``max_bytes`` the oldest files are deleted and their records counted in ``dropped``.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("monitor.sdk")
SUFFIX = ".json"


class Folder:
    """JSON files in one directory, oldest first, within ``max_bytes``; ``kind`` names it in warnings."""

    def __init__(
        self, directory: str | os.PathLike[str], max_bytes: int, kind: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.kind = kind
        self.dropped = 0
        self.clock = clock
        self._seq = itertools.count(1)  # next() is atomic: a serving thread and the sender may both write
        self.directory.mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes, records: int, tag: int) -> None:
        """Write one file; delete the oldest (or skip this one) past the size bound."""
        if len(data) > self.max_bytes:
            self._count_drop(records, f"a batch larger than the whole {self.kind}")
            return
        self._make_room(len(data))
        stamp = int(self.clock() * 1e9)
        name = f"{stamp:020d}{next(self._seq) % 1_000_000:06d}-{os.getpid()}-{tag}-{records}{SUFFIX}"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.directory / name)

    def files(self) -> list[Path]:
        """The files held, oldest first; none when the directory was removed under the process."""
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def size(self) -> int:
        """Bytes held."""
        return sum(_size(p) for p in self.files())

    def _make_room(self, needed: int) -> None:
        files = self._prune(self.files())
        total = sum(_size(p) for p in files)
        for path in files:
            if total + needed <= self.max_bytes:
                return
            total -= _size(path)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            self._count_drop(records_in(path), f"the {self.kind} is full")

    def _prune(self, files: list[Path]) -> list[Path]:
        """The files still held once those past any bound other than size are gone (none here)."""
        return files

    def _count_drop(self, records: int, why: str) -> None:
        self.dropped += records
        log.warning(
            "mlwatch: dropped %d prediction record(s): %s (%s bound %d bytes)", records, why, self.kind, self.max_bytes
        )


def records_in(path: Path) -> int:
    """How many records the file named ``path`` holds, by its name."""
    count = _fields(path)[-1]
    return int(count) if count.isdigit() else 0


def tag_of(path: Path) -> int:
    """The tag in the name of ``path`` (0 in names of the three-field form)."""
    fields = _fields(path)
    return int(fields[2]) if len(fields) == 4 and fields[2].isdigit() else 0


def with_tag(path: Path, tag: int) -> Path:
    """``path`` renamed to carry ``tag``, keeping its place in the order."""
    fields = _fields(path)
    head, count = fields[:2], fields[-1]
    return path.with_name("-".join([*head, str(tag), count]) + SUFFIX)


def with_records(path: Path, records: int) -> Path:
    """``path`` renamed to say it holds ``records``, keeping its place in the order and its tag."""
    return path.with_name("-".join([*_fields(path)[:2], str(tag_of(path)), str(records)]) + SUFFIX)


def written_at(path: Path) -> float:
    """When the file named ``path`` was written, in seconds of its folder's clock."""
    stamp = path.name[:20]
    return int(stamp) / 1e9 if stamp.isdigit() else 0.0


def _fields(path: Path) -> list[str]:
    return path.name.split(SUFFIX)[0].split("-")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
