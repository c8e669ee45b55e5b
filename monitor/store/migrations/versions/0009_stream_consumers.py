"""stream_consumers: each `mlwatch consume` process's counters, backlog and lag, for /metrics and the dashboard

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_consumers",
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("durable", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_stream_consumers")),
    )
    with op.batch_alter_table("stream_consumers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stream_consumers_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stream_consumers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stream_consumers_updated_at"))
    op.drop_table("stream_consumers")
