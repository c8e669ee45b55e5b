"""The dashboard's configuration, read again whenever ``mlwatch.yaml`` changes.

A user removed from (or re-hashed in) ``users:`` must lose the dashboard at once, without
a restart, so the dashboard does not keep the settings it started with: each call looks at
the file's path, modification time and size (one ``stat``) and reloads when they moved.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from monitor.config import Settings
from monitor.settings import load_settings

Stamp = tuple[str, int, int] | None


class LiveSettings:
    """Callable: the current settings, reloaded when the configuration file changed."""

    def __init__(self, load: Callable[[], Settings] = load_settings, environ: Mapping[str, str] | None = None) -> None:
        self._load = load
        self._environ = environ
        self._lock = threading.Lock()
        self._loaded: tuple[Stamp, Settings] | None = None

    def __call__(self) -> Settings:
        stamp = _stamp(self._path())
        with self._lock:
            if self._loaded is None or self._loaded[0] != stamp:
                self._loaded = (stamp, self._load())
            return self._loaded[1]

    def _path(self) -> Path:
        env = os.environ if self._environ is None else self._environ
        return Path(env.get("MLWATCH_CONFIG") or "mlwatch.yaml")


def _stamp(path: Path) -> Stamp:
    try:
        found = path.stat()
    except OSError:
        return None
    return (str(path), found.st_mtime_ns, found.st_size)
