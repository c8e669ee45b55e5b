"""``mlwatch proxy``: a reverse proxy that times and logs every call to any HTTP model server."""

from __future__ import annotations

from monitor.proxy.app import ProxyApp

__all__ = ["ProxyApp"]
