"""The store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Times are UTC epoch seconds (double precision) so that bucketing is plain arithmetic on
every backend. JSON payloads are stored as text serialized by orjson, which is faster
than the dialects' JSON types and reads the same everywhere.
"""

from __future__ import annotations

import math

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid; BigInteger would not be.
Id = BigInteger().with_variant(Integer(), "sqlite")

LATENCY_BUCKETS = 60
"""Latency histogram columns h00..h59 of ``traffic_minutes`` (see ``monitor.store.latency``)."""
HISTOGRAM_COLUMNS: tuple[str, ...] = tuple(f"h{i:02d}" for i in range(LATENCY_BUCKETS))
"""Their names, in bucket order."""

SAMPLE_LEVELS = 64
"""``predictions.sample_level`` runs from 0 to this; a sample never asks for fewer than 2**-64 of a window."""


def sample_level(key: float) -> int:
    """The largest k (at most ``SAMPLE_LEVELS``) with ``key < 2**-k``, for a ``sample_key`` in [0, 1).

    The rows with ``sample_key < 2**-k`` are a uniform sample of a share 2**-k, and they are
    exactly the rows with ``sample_level >= k``: the index finds them without a key that
    scatters inserts.
    """
    return min(SAMPLE_LEVELS, -math.frexp(key)[1]) if key else SAMPLE_LEVELS


services = Table(
    "services",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("task", String(20), nullable=False),
    Column("model_name", String(200)),
    Column("target", String(200)),
    Column("features", Text, nullable=False),  # JSON list of {name, type, ...}
    Column("config", Text, nullable=False),  # JSON of the remaining service settings
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # No foreign key: PostgreSQL checks one with a query per inserted row (a fifth of ingest
    # time). The store writes only service ids it has just read, and never deletes a service.
    Column("service_id", Integer, nullable=False),
    Column("request_id", String(200), nullable=False),
    Column("ts", Float, nullable=False),
    Column("minute", BigInteger, nullable=False),  # floor(ts / 60): the time index's bucket
    Column("sample_key", Float, nullable=False),  # uniform in [0, 1), drawn at ingest
    Column("sample_level", SmallInteger, nullable=False),  # sample_key < 2**-k exactly when sample_level >= k
    Column("features", Text, nullable=False),
    Column("prediction", Text),
    Column("probabilities", Text),
    Column("latency_ms", Float),
    Column("model_version", String(100)),
    Column("status", String(20), nullable=False),
    UniqueConstraint("service_id", "request_id"),
    # One index serves time ranges (by minute) and bounded sampling (by minute, then
    # sample_level). Its keys take few distinct values per minute, so a batch's index entries
    # land next to each other (after the newest row id of their key) instead of at random
    # pages, as keys holding ts or sample_key did: SQLite ingest is 20% faster for it, and
    # stays fast as an hour fills up.
    Index(None, "service_id", "minute", "sample_level"),
)

labels = Table(
    "labels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service_id", Integer, ForeignKey("services.id", ondelete="CASCADE"), nullable=False),
    Column("request_id", String(200), nullable=False),
    Column("label", Text, nullable=False),
    Column("ts", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    UniqueConstraint("service_id", "request_id"),
    Index(None, "service_id", "received_at"),  # the scheduler asks for the newest often; appends only
)

traffic_minutes = Table(
    "traffic_minutes",
    metadata,
    Column("service_id", Integer, ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("model_version", String(100), primary_key=True),  # '' when unknown
    Column("minute", BigInteger, primary_key=True),  # floor(ts / 60)
    Column("count", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("latency_count", BigInteger, nullable=False),
    Column("latency_sum", Float, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in HISTOGRAM_COLUMNS),
)

host_samples = Table(
    "host_samples",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("host", String(200), nullable=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(20), nullable=False),  # host, process, gpu
    Column("name", String(200), nullable=False),  # '' for the host, pid/name, GPU index
    Column("metrics", Text, nullable=False),
    Index(None, "host", "ts"),
    Index(None, "ts"),
)

references = Table(
    "references",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("service_id", Integer, ForeignKey("services.id", ondelete="CASCADE"), nullable=False),
    Column("model_version", String(100), nullable=False),  # '' = any version
    Column("created_at", Float, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),  # Parquet
    Column("stats", Text),  # cached per-column statistics, JSON
    Column("source", String(200), nullable=False),
    UniqueConstraint("service_id", "model_version"),
)

checks = Table(
    "checks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service_id", Integer, ForeignKey("services.id", ondelete="CASCADE"), nullable=False),
    Column("window_start", Float, nullable=False),
    Column("window_end", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("model_version", String(100)),
    Column("status", String(20), nullable=False),  # ok, error, no_data
    Column("trigger", String(20), nullable=False),  # schedule, manual, api
    Column("summary", Text, nullable=False),
    Column("results", Text, nullable=False),
    Column("error", Text),
    Column("report_html", LargeBinary),
    Index(None, "service_id", "window_end"),
)

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("spec", Text, nullable=False),
    Column("source", String(20), nullable=False),  # config or api
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", Float, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("service", String(100)),
    Column("state", String(20), nullable=False),  # pending, firing, resolved
    Column("severity", String(20), nullable=False),
    Column("labels", Text, nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("summary", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("fired_at", Float),
    Column("resolved_at", Float),
    Column("last_notified_at", Float),
    Column("acked_by", String(200)),
    Column("acked_at", Float),
    Column("inhibited_by", Id),  # the firing alert that mutes this one (inhibit_rules), while it does
    Index(None, "fingerprint", "state"),
    Index(None, "state"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("matchers", Text, nullable=False),
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("comment", Text, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),  # the webhook-id header, same on every retry
    Column("receiver", String(200), nullable=False),
    Column("event_type", String(60), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(20), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("delivered_at", Float),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("last_latency_ms", Float),
    Column("claimed_until", Float),
    UniqueConstraint("event_id", "receiver"),
    Index(None, "status", "next_attempt_at"),
)

alert_groups = Table(
    "alert_groups",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("receiver", String(200), nullable=False),
    Column("group_key", String(64), nullable=False),  # hash of the group_by label values
    Column("labels", Text, nullable=False),  # those values
    Column("created_at", Float, nullable=False),
    Column("next_flush_at", Float, nullable=False),  # group_wait, group_interval or repeat_interval ahead
    Column("last_notified_at", Float),
    UniqueConstraint("receiver", "group_key"),
    Index(None, "next_flush_at"),
)

alert_group_members = Table(
    "alert_group_members",
    metadata,
    Column("group_id", Id, ForeignKey("alert_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("alert_id", Id, nullable=False),
    Column("state", String(20), nullable=False),  # firing or resolved, as last told
    Column("notified", Boolean, nullable=False),  # part of a notification of its group already
    Column("data", Text, nullable=False),  # the alert as its last event carried it
    Column("updated_at", Float, nullable=False),
)

ATTEMPT_ERROR_CHARS = 1000
"""The longest error text kept per delivery attempt (a receiver's answer is quoted, never kept whole)."""

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("delivery_id", Id, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),  # 1, 2, ...: the delivery's attempt count at its claim
    Column("started_at", Float, nullable=False),
    Column("status_code", Integer),  # None when no answer came (timeout, refused, connection error)
    Column("latency_ms", Float),
    Column("error", String(ATTEMPT_ERROR_CHARS)),
    Index(None, "started_at"),  # retention deletes by age
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),  # retrain, check, ...
    Column("service", String(100)),
    Column("status", String(20), nullable=False),  # queued, running, succeeded, failed, cancelled
    Column("params", Text, nullable=False),
    Column("progress", Float, nullable=False),
    Column("log", Text, nullable=False),
    Column("result", Text),
    Column("error", Text),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("heartbeat_at", Float),
    Column("claimed_by", String(200)),
    Column("cancel_requested", Boolean, nullable=False),
    Index(None, "status", "created_at"),
    Index(None, "service", "kind", "status"),
)

model_decisions = Table(
    "model_decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service", String(100), nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("version", String(100), nullable=False),
    Column("job_id", BigInteger),
    Column("decision", String(20), nullable=False),  # promote, reject, pending
    Column("metrics", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index(None, "service", "version"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(200), nullable=False),
    Column("details", Text, nullable=False),
    Index(None, "action", "target", "ts"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked", Boolean, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),  # what is claimed, e.g. check:<service>:<window>
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 hex of the secret in the browser's cookie
    Column("viewer", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("kind", String(20), nullable=False),  # user, token or bootstrap: what signed in
    Column("credential", String(64), nullable=False),  # sha256 hex of that password hash or token
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index(None, "expires_at"),
)

cloudevent_halves = Table(
    "cloudevent_halves",
    metadata,
    # The request or response of one inference that KServe's logger sent, kept until the other
    # half comes (``monitor.cloudevents``): in the store, so that a restart between the two
    # loses nothing and any replica can pair them.
    Column("service_id", Integer, ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("event_id", String(200), primary_key=True),  # ce-id, shared by the two halves
    Column("component", String(100), primary_key=True),  # ce-component ('' when not given)
    Column("kind", String(10), primary_key=True),  # request or response
    Column("ts", Float, nullable=False),  # the event's ce-time, else when it came
    Column("data", Text, nullable=False),  # the payload as JSON text
    Column("expires_at", Float, nullable=False),
    Index(None, "expires_at"),
)

cloudevent_expiries = Table(
    "cloudevent_expiries",
    metadata,
    Column("service_id", Integer, ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("expired", BigInteger, nullable=False),  # halves dropped unpaired, since the table was made
)

stream_consumers = Table(
    "stream_consumers",
    metadata,
    Column("consumer", String(200), primary_key=True),  # host:pid of one `mlwatch consume` process
    Column("stream", String(200), nullable=False),
    Column("durable", String(200), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("stats", Text, nullable=False),  # counters, backlog and lag histogram (orjson), see store/consumers.py
    Index(None, "updated_at"),
)

rollout_stages = Table(
    "rollout_stages",
    metadata,
    # A challenger's time in a rollout stage (shadow): at most one active per service, ended
    # with a status and the reason (labelled enough, expired, crashed, aborted, promoted).
    Column("id", Integer, primary_key=True),
    Column("service_id", Integer, ForeignKey("services.id", ondelete="CASCADE"), nullable=False),
    Column("stage", String(20), nullable=False),  # shadow
    Column("version", String(100), nullable=False),
    Column("champion_version", String(100)),  # the champion when the stage started
    Column("status", String(20), nullable=False),  # active, passed, failed, expired, crashed, aborted
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("reason", Text),
    Column("actor", String(200), nullable=False),
    Column("crashes", Integer, nullable=False),
    Column("details", Text, nullable=False),  # JSON: the numbers the stage ended on
    Index(None, "service_id", "status"),
)

shadow_predictions = Table(
    "shadow_predictions",
    metadata,
    # What a challenger in shadow predicted for a request the champion answered, beside the
    # champion's answer: the pair is compared on the same rows, and labels join by request id.
    # Kept apart from ``predictions`` so that checks, traffic and alerts never see a shadow row.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("stage_id", Integer, ForeignKey("rollout_stages.id", ondelete="CASCADE"), nullable=False),
    Column("service_id", Integer, nullable=False),
    Column("request_id", String(200), nullable=False),
    Column("ts", Float, nullable=False),
    Column("model_version", String(100), nullable=False),  # the shadow's version
    Column("prediction", Text),
    Column("probabilities", Text),
    Column("latency_ms", Float),
    Column("champion_version", String(100)),
    Column("champion_prediction", Text),
    Column("champion_probabilities", Text),
    UniqueConstraint("stage_id", "request_id"),
    Index(None, "ts"),  # retention deletes by time, as it does predictions
)
