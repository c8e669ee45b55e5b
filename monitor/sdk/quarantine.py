"""Records the server will not take, kept on disk for a person to look at (and resend).

A record lands here when the server refuses it as invalid (a 4xx other than 401/403), or
when it still fails the server (a 5xx) on its own while the server takes other records:
keeping either in the spool would stop every later batch behind it, and deleting it would
lose it without a trace. One JSON file per refusal, ``{"status", "reason", "records"}``, in
``<spool>/quarantine/``; past ``max_bytes`` the oldest files are deleted and counted.

    $ cat ~/.cache/mlwatch/spool/credit/*/quarantine/*.json
    {"status": 500, "reason": "HTTP 500: internal error", "records": [{"request_id": ...}]}
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from monitor.sdk.folder import Folder

log = logging.getLogger("monitor.sdk")


class Quarantine(Folder):
    """Refused records on disk, newest kept within ``max_bytes``; ``added`` counts every record put."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        super().__init__(directory, max_bytes, "quarantine")
        self.added = 0

    def put(self, records: list[dict[str, Any]], status: int, reason: str) -> None:
        """Keep ``records`` with the answer that refused them."""
        data = {"status": status, "reason": reason, "records": records}
        self.add(json.dumps(data, allow_nan=False, default=str).encode(), len(records), status)
        self.added += len(records)
        log.warning(
            "mlwatch: the server will not take %d record(s) (%s); kept in %s", len(records), reason, self.directory
        )
