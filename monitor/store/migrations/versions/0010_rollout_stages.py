"""rollout_stages and shadow_predictions: a challenger scored in shadow beside the champion

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rollout_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("champion_version", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("crashes", sa.Integer(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_rollout_stages_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_stages")),
    )
    op.create_index(
        op.f("ix_rollout_stages_service_id_status"), "rollout_stages", ["service_id", "status"], unique=False
    )
    op.create_table(
        "shadow_predictions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("prediction", sa.Text(), nullable=True),
        sa.Column("probabilities", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("champion_version", sa.String(length=100), nullable=True),
        sa.Column("champion_prediction", sa.Text(), nullable=True),
        sa.Column("champion_probabilities", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["stage_id"],
            ["rollout_stages.id"],
            name=op.f("fk_shadow_predictions_stage_id_rollout_stages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_predictions")),
        sa.UniqueConstraint("stage_id", "request_id", name=op.f("uq_shadow_predictions_stage_id_request_id")),
    )
    op.create_index(op.f("ix_shadow_predictions_ts"), "shadow_predictions", ["ts"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_shadow_predictions_ts"), table_name="shadow_predictions")
    op.drop_table("shadow_predictions")
    op.drop_index(op.f("ix_rollout_stages_service_id_status"), table_name="rollout_stages")
    op.drop_table("rollout_stages")
