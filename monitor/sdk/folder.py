"""A directory of JSON batch files, oldest first, held within a byte bound.

Files are named ``<time_ns><seq>-<pid>-<tag>-<records>.json``: the oldest sort first, and
a deleted file still says how many records it held. ``tag`` is the spool's count of 5xx
answers to the batch and the quarantine's HTTP status; files of the older three-field
form (no tag) read as tag 0. A file is written under a hidden name and renamed, so a
reader never sees half of one. Past ``max_bytes`` the oldest files are deleted and their
records counted in ``dropped``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger("monitor.sdk")
SUFFIX = ".json"


class Folder:
    """JSON files in one directory, oldest first, within ``max_bytes``; ``kind`` names it in warnings."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int, kind: str) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.kind = kind
        self.dropped = 0
        self._seq = 0
        self.directory.mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes, records: int, tag: int) -> None:
        """Write one file; delete the oldest (or skip this one) past the size bound."""
        if len(data) > self.max_bytes:
            self._count_drop(records, f"a batch larger than the whole {self.kind}")
            return
        self._make_room(len(data))
        self._seq += 1
        name = f"{time.time_ns():020d}{self._seq:06d}-{os.getpid()}-{tag}-{records}{SUFFIX}"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.directory / name)

    def files(self) -> list[Path]:
        """The files held, oldest first."""
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))

    def size(self) -> int:
        """Bytes held."""
        return sum(_size(p) for p in self.files())

    def _make_room(self, needed: int) -> None:
        files = self.files()
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


def _fields(path: Path) -> list[str]:
    return path.name.split(SUFFIX)[0].split("-")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
