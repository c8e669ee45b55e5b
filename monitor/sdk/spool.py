"""A bounded on-disk spool of batches the server could not take yet.

One JSON file per batch (see ``monitor.sdk.folder`` for the names); its tag counts the 5xx
answers the batch has had, so the budget of attempts before it is split survives a restart
and is shared by the processes of one service. Past ``max_bytes`` the oldest batches are
deleted and their records counted as dropped. Past ``max_age`` seconds (7 days by default;
None: no bound) records are dropped too, counted in ``expired``: a whole batch by the time
its file was written (records are stamped before they are spooled), when a batch is added
or claimed, and the records of a claimed batch one by one by their own ``timestamp``, so a
device offline for longer than its spool should keep never sends what the server would
only count as history. A sender claims a file by renaming it
(atomic), so several processes of one service can share a directory; claims left by a
dead process are given back when a spool opens.

The default directory (``default_directory``) is keyed by the service and by where its
batches go, ``<cache>/mlwatch/spool/<service>/<key>/`` with ``key`` the first 16 hex digits
of the SHA-256 of the target (the API URL, normalized, or the store URL in store mode):
every process that sends the same service to the same server shares it, so a restart
drains what its predecessor left, and records spooled for one server are never delivered
to another. ``<cache>`` is ``$XDG_CACHE_HOME`` or ``~/.cache``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.sdk.folder import SUFFIX, Folder, records_in, tag_of, with_records, with_tag, written_at

log = logging.getLogger("monitor.sdk")
DEFAULT_MAX_AGE = 7 * 86400.0  # seconds: a week offline is kept; older records are history, not monitoring
EXPIRY_WARNING_INTERVAL = 60.0  # seconds of the clock: a long outage expires a batch a second, not a line each


class Spool(Folder):
    """Batches waiting on disk, oldest first, within ``max_bytes`` and ``max_age`` seconds (of ``clock``)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        *,
        max_age: float | None = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_age is not None and not max_age > 0:
            raise ValueError(f"spool max_age must be a positive number of seconds or None, got {max_age!r}")
        super().__init__(directory, max_bytes, "spool", clock)
        self.max_age = max_age
        self.expired = 0
        self.written = 0  # records added since start (a batch split and put back counts again)
        self._expiry_warned = -math.inf
        self._recover_claims()

    def write(self, records: list[dict[str, Any]], strikes: int = 0) -> None:
        """Add a batch that has had ``strikes`` 5xx answers; drop the oldest batches past the bound."""
        self.add(json.dumps(records, allow_nan=False, default=str).encode(), len(records), strikes)
        self.written += len(records)

    def pending(self) -> bool:
        """True when at least one batch waits."""
        return bool(self.files())

    def claim(self) -> tuple[Path, list[dict[str, Any]]] | None:
        """Take the oldest batch (renamed so no other sender takes it), less its expired records; None when empty."""
        for path in self._prune(self.files()):
            claimed = path.with_name(f"{path.name}.{os.getpid()}.claim")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another process took it
            try:
                records = json.loads(claimed.read_bytes())
            except ValueError:
                self._count_drop(records_in(path), f"an unreadable spool file {path.name}")
                claimed.unlink(missing_ok=True)
                continue
            fresh = self._fresh(records)
            if not fresh:
                claimed.unlink(missing_ok=True)
                continue
            return self._rewritten(claimed, fresh) if len(fresh) < len(records) else claimed, fresh
        return None

    def _prune(self, files: list[Path]) -> list[Path]:
        """Delete the batches written before the age bound, counting their records; return the others."""
        if self.max_age is None:
            return files
        cutoff = self.clock() - self.max_age
        kept = []
        for path in files:
            if written_at(path) >= cutoff:
                kept.append(path)
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # another process took it
            self._count_expired(records_in(path))
        return kept

    def _fresh(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records stamped within the age bound (all of them without one); the others are counted."""
        if self.max_age is None:
            return records
        cutoff = self.clock() - self.max_age
        fresh = [r for r in records if not isinstance(ts := r.get("timestamp"), int | float) or ts >= cutoff]
        if len(fresh) < len(records):
            self._count_expired(len(records) - len(fresh))
        return fresh

    def _rewritten(self, claimed: Path, records: list[dict[str, Any]]) -> Path:
        """The claim of ``claimed`` holding only ``records``, named for their count (a release puts that back)."""
        back = with_records(_unclaimed(claimed), len(records))
        target = claimed.with_name(f"{back.name}.{os.getpid()}.claim")
        tmp = self.directory / f".{target.name}.tmp"
        tmp.write_bytes(json.dumps(records, allow_nan=False, default=str).encode())
        tmp.replace(target)
        if target != claimed:
            claimed.unlink(missing_ok=True)
        return target

    def _count_expired(self, records: int) -> None:
        self.expired += records
        now = self.clock()
        if now - self._expiry_warned >= EXPIRY_WARNING_INTERVAL:
            self._expiry_warned = now
            log.warning(
                "mlwatch: dropped prediction record(s) older than the spool's max age (%.0f s) in %s; %d so far",
                self.max_age,
                self.directory,
                self.expired,
            )

    def strikes(self, claimed: Path) -> int:
        """How many 5xx answers the claimed batch has had."""
        return tag_of(_unclaimed(claimed))

    def done(self, claimed: Path) -> None:
        """The claimed batch was delivered (or moved elsewhere): delete it."""
        claimed.unlink(missing_ok=True)

    def release(self, claimed: Path, strikes: int | None = None) -> None:
        """The claimed batch could not be delivered: put it back in its place, with ``strikes`` if given."""
        back = _unclaimed(claimed)
        claimed.rename(back if strikes is None else with_tag(back, strikes))

    def _recover_claims(self) -> None:
        for path in self.directory.glob(f"*{SUFFIX}.*.claim"):
            pid = int(path.name.rsplit(".", 2)[-2])
            if pid == os.getpid() or not _alive(pid):
                path.rename(_unclaimed(path))


def _unclaimed(claimed: Path) -> Path:
    return claimed.with_name(claimed.name.rsplit(".", 2)[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_directory(service: str, target: str, base: Path | None = None) -> Path:
    """The spool of ``service`` sending to ``target``: ``<base>/mlwatch/spool/<service>/<key>``, ``base`` the cache."""
    base = base or Path(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"))
    folder = base / "mlwatch" / "spool" / "".join(c if c.isalnum() or c in "._-" else "_" for c in service)
    keyed = folder / hashlib.sha256(target.encode()).hexdigest()[:16]
    _warn_unkeyed(folder, keyed)
    return keyed


def _warn_unkeyed(folder: Path, keyed: Path) -> None:
    """Batches of the older layout (one spool per service) may be for any server: say so, send none."""
    try:
        waiting = sum(1 for p in folder.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))
    except OSError:
        return
    if waiting:
        log.warning(
            "mlwatch: %d batch(es) in %s were spooled before spools were kept per server, so none is sent; "
            "if they are for the server this tracker sends to, move the .json files into %s",
            waiting,
            folder,
            keyed,
        )
