"""Reference (training) data per service and model version, with cached column statistics.

The data is stored as Parquet, next to statistics computed once, before it is set (by
``monitor.drift.reference``), so that checks never re-scan it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from monitor.errors import NotFound
from monitor.records import ReferenceData, ReferenceInfo, Service
from monitor.store import schema as t
from monitor.store.codec import dumps, loads
from monitor.store.engine import write_transaction
from monitor.store.storable import check_text, json_text

if TYPE_CHECKING:
    import pandas as pd

MAX_SOURCE = 200


class ReferencesMixin:
    """Store methods for reference data sets (pandas is imported only when used)."""

    engine: Engine

    def set_reference(
        self, service: Service, reference: ReferenceData, model_version: str = "", source: str = "api"
    ) -> ReferenceInfo:
        """Store (or replace) the reference of ``service`` for ``model_version`` ('' = any version).

        ``reference`` comes with its statistics computed (``monitor.drift.reference.reference_data``),
        so that checks read them instead of scanning the data.
        """
        check_text("model_version", model_version, 100)
        info = ReferenceInfo(service.id, model_version or "", time.time(), reference.row_count, source[:MAX_SOURCE])
        values = {
            "created_at": info.created_at,
            "row_count": info.row_count,
            "stats": json_text("reference", reference.stats),
            "source": check_text("source", info.source),
            "data": reference.parquet,
        }
        self._upsert_reference(service.id, info.model_version, values)
        return info

    def _upsert_reference(self, service_id: int, version: str, values: dict[str, Any]) -> None:
        r = t.references
        with write_transaction(self.engine) as conn:
            where = (r.c.service_id == service_id, r.c.model_version == version)
            found = conn.execute(select(r.c.id).where(*where)).scalar()
            if found is None:
                conn.execute(r.insert().values(service_id=service_id, model_version=version, **values))
            else:
                conn.execute(r.update().where(r.c.id == found).values(**values))

    def get_reference(self, service: Service, model_version: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
        """The reference frame and cached statistics for ``model_version``, else the '' (any version) one.

        NotFound when the service has neither.
        """
        row = self._reference_row(service, model_version, with_data=True)
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(bytes(row.data)))
        return frame, loads(row.stats) or {}

    def set_reference_baseline(
        self, service: Service, reference_version: str, model_version: str, metrics: dict[str, float]
    ) -> dict[str, float]:
        """Record the quality baseline of ``model_version`` in the statistics of a reference that has none.

        The first writer wins, so concurrent workers agree on one baseline; returns the one stored.
        """
        check_text("model_version", model_version, 100)

        def record(stats: dict[str, Any]) -> bool:
            baselines = stats.setdefault("baselines", {})
            if model_version in baselines:
                return False
            baselines[model_version] = metrics
            return True

        return dict(self._update_stats(service, reference_version, record)["baselines"][model_version])

    def set_segment_baselines(
        self, service: Service, reference_version: str, model_version: str, cohorts: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, float]]:
        """Record the quality baseline of each cohort (by its label, ``region=eu``) of ``model_version``
        that has none in the reference's statistics; the first writer of a cohort wins. Returns all of
        that version's cohort baselines as stored."""
        check_text("model_version", model_version, 100)

        def record(stats: dict[str, Any]) -> bool:
            kept = stats.setdefault("segment_baselines", {}).setdefault(model_version, {})
            new = {label: found for label, found in cohorts.items() if label not in kept}
            kept.update(new)
            return bool(new)

        return dict(self._update_stats(service, reference_version, record)["segment_baselines"][model_version])

    def _update_stats(
        self, service: Service, reference_version: str, change: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """Apply ``change`` to a reference's statistics under a row lock, writing them back when it
        says it changed something; the statistics as stored. NotFound if there is no such reference."""
        r = t.references
        where = (r.c.service_id == service.id, r.c.model_version == reference_version)
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(r.c.stats).where(*where).with_for_update()).first()
            if row is None:
                raise NotFound(f"service {service.name!r} has no reference for model version {reference_version!r}")
            stats = loads(row.stats) or {}
            if change(stats):
                conn.execute(r.update().where(*where).values(stats=dumps(stats)))
        return stats

    def reference_stats(self, service: Service, model_version: str | None = None) -> dict[str, Any]:
        """The cached statistics of the reference a check of ``model_version`` would use; NotFound if none."""
        return loads(self._reference_row(service, model_version, with_data=False).stats) or {}

    def reference_info(self, service: Service, model_version: str | None = None) -> ReferenceInfo | None:
        """Which reference a check of ``model_version`` would use (without loading it), or None."""
        try:
            row = self._reference_row(service, model_version, with_data=False)
        except NotFound:
            return None
        return ReferenceInfo(service.id, row.model_version, row.created_at, row.row_count, row.source)

    def list_references(self, service: Service) -> list[ReferenceInfo]:
        """Every reference stored for ``service``, by model version."""
        r = t.references
        query = select(r.c.model_version, r.c.created_at, r.c.row_count, r.c.source).where(r.c.service_id == service.id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(r.c.model_version)).all()
        return [ReferenceInfo(service.id, x.model_version, x.created_at, x.row_count, x.source) for x in rows]

    def _reference_row(self, service: Service, model_version: str | None, *, with_data: bool) -> Any:
        check_text("model_version", model_version)
        r = t.references
        columns = [r.c.model_version, r.c.created_at, r.c.row_count, r.c.source, r.c.stats]
        if with_data:
            columns.append(r.c.data)
        wanted = [v for v in dict.fromkeys([model_version or "", ""])]
        with self.engine.connect() as conn:
            rows = {
                x.model_version: x
                for x in conn.execute(
                    select(*columns).where(r.c.service_id == service.id, r.c.model_version.in_(wanted))
                )
            }
        for version in wanted:
            if version in rows:
                return rows[version]
        raise NotFound(
            f"service {service.name!r} has no reference data"
            + (f" for model version {model_version!r} (nor for any version)" if model_version else "")
            + "; upload one with `mlwatch reference upload FILE --service NAME` "
            + "or POST /v1/services/{service}/reference"
        )
