"""predictions: index by (service, minute, sample level) instead of (service, hour, sample key, ts); no FK

Keys holding ``sample_key`` or ``ts`` put each new row's index entry at a random place, so
SQLite wrote most index pages again at every commit. ``minute`` and ``sample_level`` take
few values, so new entries go next to each other. ``hour`` is dropped: ``minute`` does its job.
The foreign key to services goes too: PostgreSQL checked it with a query per inserted row.
Labels get an index on (service, received_at): the scheduler reads the newest one every cycle.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_LEVELS = 64  # monitor.store.schema.SAMPLE_LEVELS when this revision was written


def _floor(column: str, seconds: int) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"floor({column} / {seconds})::bigint"
    whole = f"CAST({column} / {seconds} AS INTEGER)"  # truncates toward zero: correct it below zero
    return f"({whole} - ({whole} > {column} / {seconds}))"


def _level() -> str:
    """``schema.sample_level`` in SQL: k when 2**-(k+1) <= sample_key < 2**-k."""
    steps = " ".join(f"WHEN sample_key >= {2.0 ** -(k + 1)!r} THEN {k}" for k in range(_LEVELS))
    return f"CASE {steps} ELSE {_LEVELS} END"


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.add_column(sa.Column("minute", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("sample_level", sa.SmallInteger(), nullable=True))
    op.execute(f"UPDATE predictions SET minute = {_floor('ts', 60)}, sample_level = {_level()}")
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.alter_column("minute", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("sample_level", existing_type=sa.SmallInteger(), nullable=False)
        batch_op.drop_index("ix_predictions_service_id_hour_sample_key_ts")
        batch_op.drop_column("hour")
        batch_op.drop_constraint("fk_predictions_service_id_services", type_="foreignkey")
        batch_op.create_index(
            "ix_predictions_service_id_minute_sample_level", ["service_id", "minute", "sample_level"], unique=False
        )

    op.create_index("ix_labels_service_id_received_at", "labels", ["service_id", "received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_labels_service_id_received_at", table_name="labels")
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.add_column(sa.Column("hour", sa.Integer(), nullable=True))
    op.execute(f"UPDATE predictions SET hour = {_floor('ts', 3600)}")
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.alter_column("hour", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index("ix_predictions_service_id_minute_sample_level")
        batch_op.drop_column("sample_level")
        batch_op.drop_column("minute")
        batch_op.create_foreign_key(
            "fk_predictions_service_id_services", "services", ["service_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index(
            "ix_predictions_service_id_hour_sample_key_ts", ["service_id", "hour", "sample_key", "ts"], unique=False
        )
