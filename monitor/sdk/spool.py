"""A bounded on-disk spool of batches the server could not take yet.

One JSON file per batch (see ``monitor.sdk.folder`` for the names); its tag counts the 5xx
answers the batch has had, so the budget of attempts before it is split survives a restart
and is shared by the processes of one service. Past ``max_bytes`` the oldest batches are
deleted and their records counted as dropped. A sender claims a file by renaming it
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
import os
from pathlib import Path
from typing import Any

from monitor.sdk.folder import SUFFIX, Folder, records_in, tag_of, with_tag

log = logging.getLogger("monitor.sdk")


class Spool(Folder):
    """Batches waiting on disk, oldest first, within ``max_bytes``."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        super().__init__(directory, max_bytes, "spool")
        self._recover_claims()

    def write(self, records: list[dict[str, Any]], strikes: int = 0) -> None:
        """Add a batch that has had ``strikes`` 5xx answers; drop the oldest batches past the bound."""
        self.add(json.dumps(records, allow_nan=False, default=str).encode(), len(records), strikes)

    def pending(self) -> bool:
        """True when at least one batch waits."""
        return bool(self.files())

    def claim(self) -> tuple[Path, list[dict[str, Any]]] | None:
        """Take the oldest batch (renamed so no other sender takes it); None when empty."""
        for path in self.files():
            claimed = path.with_name(f"{path.name}.{os.getpid()}.claim")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another process took it
            try:
                return claimed, json.loads(claimed.read_bytes())
            except ValueError:
                self._count_drop(records_in(path), f"an unreadable spool file {path.name}")
                claimed.unlink(missing_ok=True)
        return None

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


def default_directory(service: str, target: str) -> Path:
    """The spool of ``service`` sending to ``target``: ``<cache>/mlwatch/spool/<service>/<key>``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "mlwatch" / "spool" / "".join(c if c.isalnum() or c in "._-" else "_" for c in service)
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
