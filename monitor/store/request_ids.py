"""Which request ids of a service are stored already: one indexed lookup per slice of ids.

``mlwatch ingest`` asks this before it builds records, so that re-running a file that is
already loaded reads the unique ``(service_id, request_id)`` index instead of building,
sending and conflicting a million rows (105 s for 1M rows through the API before).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select

from monitor.store import schema as t

SLICE = 2000
"""Ids per ``IN (...)``: well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535."""


def stored_request_ids(engine: Engine, service_id: int, request_ids: Sequence[str]) -> set[str]:
    """The members of ``request_ids`` that ``service_id`` already has predictions for."""
    column = t.predictions.c.request_id
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(request_ids), SLICE):
            ids = request_ids[start : start + SLICE]
            query = select(column).where(t.predictions.c.service_id == service_id, column.in_(ids))
            found.update(conn.execute(query).scalars())
    return found
