"""Which requests a middleware records: path prefixes and methods (shared by ASGI and WSGI)."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.sdk.tracker import Tracker


class TrackedRoutes:
    """Records each request to ``paths`` (prefixes; default all) with ``methods`` (default POST)."""

    def __init__(
        self,
        tracker: Tracker,
        *,
        paths: Sequence[str] = ("/",),
        methods: Sequence[str] = ("POST",),
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        self.tracker = tracker
        self.paths = tuple(paths)
        self.methods = frozenset(m.upper() for m in methods)
        self.max_body_bytes = max_body_bytes

    def wants(self, method: str, path: str) -> bool:
        """True when a request with ``method`` to ``path`` is to be recorded."""
        return method in self.methods and path.startswith(self.paths)
