"""cloudevent_halves: KServe logger events waiting for their other half; cloudevent_expiries: halves dropped unpaired

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cloudevent_halves",
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_cloudevent_halves_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("service_id", "event_id", "component", "kind", name=op.f("pk_cloudevent_halves")),
    )
    with op.batch_alter_table("cloudevent_halves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cloudevent_halves_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "cloudevent_expiries",
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("expired", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_cloudevent_expiries_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_cloudevent_expiries")),
    )


def downgrade() -> None:
    op.drop_table("cloudevent_expiries")
    with op.batch_alter_table("cloudevent_halves", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cloudevent_halves_expires_at"))
    op.drop_table("cloudevent_halves")
