"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 10:37:52.192443
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_alert_rules_name")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("service", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("fired_at", sa.Float(), nullable=True),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("last_notified_at", sa.Float(), nullable=True),
        sa.Column("acked_by", sa.String(length=200), nullable=True),
        sa.Column("acked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_fingerprint_state"), ["fingerprint", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_state"), ["state"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action_target_ts"), ["action", "target", "ts"], unique=False)

    op.create_table(
        "host_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_samples")),
    )
    with op.batch_alter_table("host_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_host_samples_host_ts"), ["host", "ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_host_samples_ts"), ["ts"], unique=False)

    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("service", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_service_kind_status"), ["service", "kind", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_status_created_at"), ["status", "created_at"], unique=False)

    op.create_table(
        "model_decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(length=100), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_decisions")),
    )
    with op.batch_alter_table("model_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_decisions_service_version"), ["service", "version"], unique=False)

    op.create_table(
        "services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("task", sa.String(length=20), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=True),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
        sa.UniqueConstraint("name", name=op.f("uq_services_name")),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matchers", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.Float(), nullable=False),
        sa.Column("ends_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("receiver", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_latency_ms", sa.Float(), nullable=True),
        sa.Column("claimed_until", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("event_id", "receiver", name=op.f("uq_webhook_deliveries_event_id_receiver")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_status_next_attempt_at"), ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "checks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.Column("window_end", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("results", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("report_html", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_checks_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checks")),
    )
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checks_service_id_window_end"), ["service_id", "window_end"], unique=False)

    op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_labels_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("service_id", "request_id", name=op.f("uq_labels_service_id_request_id")),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("sample_key", sa.Float(), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("prediction", sa.Text(), nullable=True),
        sa.Column("probabilities", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_predictions_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
        sa.UniqueConstraint("service_id", "request_id", name=op.f("uq_predictions_service_id_request_id")),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_predictions_service_id_hour_sample_key_ts"),
            ["service_id", "hour", "sample_key", "ts"],
            unique=False,
        )

    op.create_table(
        "references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_references_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_references")),
        sa.UniqueConstraint("service_id", "model_version", name=op.f("uq_references_service_id_model_version")),
    )
    op.create_table(
        "traffic_minutes",
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("latency_count", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("h00", sa.BigInteger(), nullable=False),
        sa.Column("h01", sa.BigInteger(), nullable=False),
        sa.Column("h02", sa.BigInteger(), nullable=False),
        sa.Column("h03", sa.BigInteger(), nullable=False),
        sa.Column("h04", sa.BigInteger(), nullable=False),
        sa.Column("h05", sa.BigInteger(), nullable=False),
        sa.Column("h06", sa.BigInteger(), nullable=False),
        sa.Column("h07", sa.BigInteger(), nullable=False),
        sa.Column("h08", sa.BigInteger(), nullable=False),
        sa.Column("h09", sa.BigInteger(), nullable=False),
        sa.Column("h10", sa.BigInteger(), nullable=False),
        sa.Column("h11", sa.BigInteger(), nullable=False),
        sa.Column("h12", sa.BigInteger(), nullable=False),
        sa.Column("h13", sa.BigInteger(), nullable=False),
        sa.Column("h14", sa.BigInteger(), nullable=False),
        sa.Column("h15", sa.BigInteger(), nullable=False),
        sa.Column("h16", sa.BigInteger(), nullable=False),
        sa.Column("h17", sa.BigInteger(), nullable=False),
        sa.Column("h18", sa.BigInteger(), nullable=False),
        sa.Column("h19", sa.BigInteger(), nullable=False),
        sa.Column("h20", sa.BigInteger(), nullable=False),
        sa.Column("h21", sa.BigInteger(), nullable=False),
        sa.Column("h22", sa.BigInteger(), nullable=False),
        sa.Column("h23", sa.BigInteger(), nullable=False),
        sa.Column("h24", sa.BigInteger(), nullable=False),
        sa.Column("h25", sa.BigInteger(), nullable=False),
        sa.Column("h26", sa.BigInteger(), nullable=False),
        sa.Column("h27", sa.BigInteger(), nullable=False),
        sa.Column("h28", sa.BigInteger(), nullable=False),
        sa.Column("h29", sa.BigInteger(), nullable=False),
        sa.Column("h30", sa.BigInteger(), nullable=False),
        sa.Column("h31", sa.BigInteger(), nullable=False),
        sa.Column("h32", sa.BigInteger(), nullable=False),
        sa.Column("h33", sa.BigInteger(), nullable=False),
        sa.Column("h34", sa.BigInteger(), nullable=False),
        sa.Column("h35", sa.BigInteger(), nullable=False),
        sa.Column("h36", sa.BigInteger(), nullable=False),
        sa.Column("h37", sa.BigInteger(), nullable=False),
        sa.Column("h38", sa.BigInteger(), nullable=False),
        sa.Column("h39", sa.BigInteger(), nullable=False),
        sa.Column("h40", sa.BigInteger(), nullable=False),
        sa.Column("h41", sa.BigInteger(), nullable=False),
        sa.Column("h42", sa.BigInteger(), nullable=False),
        sa.Column("h43", sa.BigInteger(), nullable=False),
        sa.Column("h44", sa.BigInteger(), nullable=False),
        sa.Column("h45", sa.BigInteger(), nullable=False),
        sa.Column("h46", sa.BigInteger(), nullable=False),
        sa.Column("h47", sa.BigInteger(), nullable=False),
        sa.Column("h48", sa.BigInteger(), nullable=False),
        sa.Column("h49", sa.BigInteger(), nullable=False),
        sa.Column("h50", sa.BigInteger(), nullable=False),
        sa.Column("h51", sa.BigInteger(), nullable=False),
        sa.Column("h52", sa.BigInteger(), nullable=False),
        sa.Column("h53", sa.BigInteger(), nullable=False),
        sa.Column("h54", sa.BigInteger(), nullable=False),
        sa.Column("h55", sa.BigInteger(), nullable=False),
        sa.Column("h56", sa.BigInteger(), nullable=False),
        sa.Column("h57", sa.BigInteger(), nullable=False),
        sa.Column("h58", sa.BigInteger(), nullable=False),
        sa.Column("h59", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_traffic_minutes_service_id_services"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("service_id", "model_version", "minute", name=op.f("pk_traffic_minutes")),
    )


def downgrade() -> None:
    op.drop_table("traffic_minutes")
    op.drop_table("references")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_service_id_hour_sample_key_ts"))

    op.drop_table("predictions")
    op.drop_table("labels")
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checks_service_id_window_end"))

    op.drop_table("checks")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_status_next_attempt_at"))

    op.drop_table("webhook_deliveries")
    op.drop_table("silences")
    op.drop_table("services")
    with op.batch_alter_table("model_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_decisions_service_version"))

    op.drop_table("model_decisions")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_jobs_service_kind_status"))

    op.drop_table("jobs")
    with op.batch_alter_table("host_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_host_samples_ts"))
        batch_op.drop_index(batch_op.f("ix_host_samples_host_ts"))

    op.drop_table("host_samples")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_action_target_ts"))

    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_state"))
        batch_op.drop_index(batch_op.f("ix_alerts_fingerprint_state"))

    op.drop_table("alerts")
    op.drop_table("alert_rules")
