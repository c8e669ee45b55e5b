"""A bounded on-disk spool of batches the server could not take yet.

One JSON file per batch, named ``<time_ns>-<pid>-<records>.json`` so that the oldest sort
first and a dropped file says how many records it held. Past ``max_bytes`` the oldest
files are deleted and their records counted as dropped. A sender claims a file by renaming
it (atomic), so several processes of one service can share a directory; claims left by a
dead process are given back when a spool opens.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("monitor.sdk")
_SUFFIX = ".json"


class Spool:
    """Batches waiting on disk, oldest first, within ``max_bytes``."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.dropped = 0
        self._seq = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        self._recover_claims()

    def write(self, records: list[dict[str, Any]]) -> None:
        """Add a batch; drop the oldest batches (or this one) past the size bound."""
        data = json.dumps(records, allow_nan=False, default=str).encode()
        if len(data) > self.max_bytes:
            self._count_drop(len(records), "a batch larger than the whole spool")
            return
        self._make_room(len(data))
        self._seq += 1
        name = f"{time.time_ns():020d}{self._seq:06d}-{os.getpid()}-{len(records)}{_SUFFIX}"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.directory / name)

    def pending(self) -> bool:
        """True when at least one batch waits."""
        return bool(self._files())

    def claim(self) -> tuple[Path, list[dict[str, Any]]] | None:
        """Take the oldest batch (renamed so no other sender takes it); None when empty."""
        for path in self._files():
            claimed = path.with_name(f"{path.name}.{os.getpid()}.claim")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another process took it
            try:
                return claimed, json.loads(claimed.read_bytes())
            except ValueError:
                self._count_drop(_records_in(path), f"an unreadable spool file {path.name}")
                claimed.unlink(missing_ok=True)
        return None

    def done(self, claimed: Path) -> None:
        """The claimed batch was delivered: delete it."""
        claimed.unlink(missing_ok=True)

    def release(self, claimed: Path) -> None:
        """The claimed batch could not be delivered: put it back."""
        claimed.rename(_unclaimed(claimed))

    def size(self) -> int:
        """Bytes held by waiting batches."""
        return sum(_size(p) for p in self._files())

    def _files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(_SUFFIX) and not p.name.startswith("."))

    def _make_room(self, needed: int) -> None:
        files = self._files()
        total = sum(_size(p) for p in files)
        for path in files:
            if total + needed <= self.max_bytes:
                return
            total -= _size(path)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            self._count_drop(_records_in(path), "the spool is full")

    def _count_drop(self, records: int, why: str) -> None:
        self.dropped += records
        log.warning("mlwatch: dropped %d prediction record(s): %s (spool bound %d bytes)", records, why, self.max_bytes)

    def _recover_claims(self) -> None:
        for path in self.directory.glob(f"*{_SUFFIX}.*.claim"):
            pid = int(path.name.rsplit(".", 2)[-2])
            if pid == os.getpid() or not _alive(pid):
                path.rename(_unclaimed(path))


def _unclaimed(claimed: Path) -> Path:
    return claimed.with_name(claimed.name.rsplit(".", 2)[0])


def _records_in(path: Path) -> int:
    stem = path.name.split(_SUFFIX)[0]
    count = stem.rsplit("-", 1)[-1]
    return int(count) if count.isdigit() else 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
