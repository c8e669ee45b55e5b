"""PostgreSQL: predictions and labels become daily range partitions, their rows carried over

``predictions`` is partitioned by ``minute`` and ``labels`` by ``ts``. Each table is renamed
aside, the partitioned table is created in its place (same columns, defaults and id
sequence; primary keys gain the partition key, as PostgreSQL requires), partitions are made
for every day that holds rows and for today and the days ahead, plus a default one, and the
rows are copied over in one pass. The unique ``(service_id, request_id)`` of predictions
moves to ``prediction_request_ids``; that of labels becomes a plain index (writers of a
service's labels take a lock instead). SQLite keeps its tables: nothing to do there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:30:00
"""

from __future__ import annotations

import time

from alembic import op

from monitor.store.partitions import (
    LABELS,
    PARTITIONS_AHEAD_DAYS,
    PREDICTIONS,
    REQUEST_IDS,
    Partitioned,
    create_partitions,
    day_of,
)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OLD = "{}_unpartitioned"

# What each table carries besides its columns, keyed by the constraint's or index's name.
_PREDICTIONS_INDEXES = {"ix_predictions_service_id_minute_sample_level": "(service_id, minute, sample_level)"}
_LABELS_INDEXES = {
    "ix_labels_service_id_received_at": "(service_id, received_at)",
    "ix_labels_service_id_request_id": "(service_id, request_id)",
}
_LABELS_FK = "fk_labels_service_id_services"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside("predictions", ["pk_predictions", "uq_predictions_service_id_request_id"], _PREDICTIONS_INDEXES)
    _set_aside("labels", ["pk_labels", "uq_labels_service_id_request_id", _LABELS_FK], _LABELS_INDEXES)
    _partitioned("predictions", "minute", _PREDICTIONS_INDEXES)
    _partitioned("labels", "ts", _LABELS_INDEXES)
    _add_labels_foreign_key()
    op.execute(
        f"CREATE TABLE {REQUEST_IDS} (service_id integer NOT NULL, request_id varchar(200) NOT NULL, "
        f"ts double precision NOT NULL, CONSTRAINT pk_{REQUEST_IDS} PRIMARY KEY (service_id, request_id))"
    )
    op.execute(f"INSERT INTO {REQUEST_IDS} SELECT service_id, request_id, ts FROM {_OLD.format('predictions')}")
    op.execute(f"CREATE INDEX ix_{REQUEST_IDS}_ts ON {REQUEST_IDS} (ts)")  # retention deletes claims by age
    for spec in (PREDICTIONS, LABELS):
        _carry_over(spec)


def _add_labels_foreign_key() -> None:
    references = "REFERENCES services (id) ON DELETE CASCADE"
    op.execute(f"ALTER TABLE labels ADD CONSTRAINT {_LABELS_FK} FOREIGN KEY (service_id) {references}")


def _set_aside(table: str, constraints: list[str], indexes: dict[str, str]) -> None:
    """Rename the table and what it owns, so the partitioned table can take the names."""
    old = _OLD.format(table)
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    for name in constraints:
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {name} TO {name}_unpartitioned")
    for name in indexes:
        if name in _existing_indexes(old):
            op.execute(f"ALTER INDEX {name} RENAME TO {name}_unpartitioned")


def _existing_indexes(table: str) -> set[str]:
    rows = op.get_bind().exec_driver_sql(
        "SELECT indexname FROM pg_indexes WHERE tablename = %s AND schemaname = current_schema()", (table,)
    )
    return {row[0] for row in rows}


def _partitioned(table: str, key: str, indexes: dict[str, str]) -> None:
    """The partitioned table in ``table``'s place, owning its id sequence."""
    op.execute(f"CREATE TABLE {table} (LIKE {_OLD.format(table)} INCLUDING DEFAULTS) PARTITION BY RANGE ({key})")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id, {key})")
    for name, columns in indexes.items():
        op.execute(f"CREATE INDEX {name} ON {table} {columns}")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")  # kept when the old table is dropped


def _carry_over(spec: Partitioned) -> None:
    """Partitions for every day with rows and the days ahead, then the rows, then the old table."""
    old = _OLD.format(spec.table)
    days = op.get_bind().exec_driver_sql(
        f"SELECT DISTINCT floor({spec.key}::float8 / {spec.per_day})::bigint FROM {old}"
    )
    today = day_of(time.time())
    wanted = sorted({int(row[0]) for row in days} | set(range(today, today + PARTITIONS_AHEAD_DAYS + 1)))
    create_partitions(op.get_bind(), spec, wanted)
    op.execute(f"INSERT INTO {spec.table} SELECT * FROM {old}")
    op.execute(f"DROP TABLE {old}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP TABLE {REQUEST_IDS}")
    _unpartitioned("predictions", _PREDICTIONS_INDEXES, unique="uq_predictions_service_id_request_id")
    received = {name: cols for name, cols in _LABELS_INDEXES.items() if name == "ix_labels_service_id_received_at"}
    _unpartitioned("labels", received, unique="uq_labels_service_id_request_id")
    _add_labels_foreign_key()


def _unpartitioned(table: str, indexes: dict[str, str], unique: str) -> None:
    """One plain table again, with the rows of every partition and the unique request ids."""
    old = _OLD.format(table)
    op.execute(f"CREATE TABLE {old} (LIKE {table} INCLUDING DEFAULTS)")
    op.execute(f"INSERT INTO {old} SELECT * FROM {table}")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {old}.id")
    op.execute(f"DROP TABLE {table}")  # and its partitions
    op.execute(f"ALTER TABLE {old} RENAME TO {table}")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {unique} UNIQUE (service_id, request_id)")
    for name, columns in indexes.items():
        op.execute(f"CREATE INDEX {name} ON {table} {columns}")
