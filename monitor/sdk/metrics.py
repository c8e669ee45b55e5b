"""A tracker's delivery counters (``DeliveryStats``) as Prometheus text, for the process that runs it.

``Tracker.stats()`` is the typed view; ``Tracker.metrics_text()`` writes the same numbers in
the text exposition format, for a service that has a ``/metrics`` endpoint of its own (add
the text to it) and for ``mlwatch proxy``, which answers them at ``/mlwatch/metrics``:

    mlwatch_sdk_sent_records_total{service="credit"} 1200
    mlwatch_sdk_dropped_records_total{service="credit",reason="queue_full"} 0
    mlwatch_sdk_spooled_records_total{service="credit"} 300
    mlwatch_sdk_quarantined_records_total{service="credit"} 2

Drops are split by ``reason``: ``queue_full``, ``spool_full``, ``spool_expired``,
``quarantine_full``. The writer is the server's (``monitor.server.exposition``, standard
library only), imported when the text is asked for.
"""

from __future__ import annotations

from monitor.sdk.delivery import DeliveryStats

PREFIX = "mlwatch_sdk_"
_COUNTERS = (
    ("sent_records_total", "Records the receiver (API, store or broker) acknowledged.", "sent"),
    ("rejected_records_total", "Records the receiver refused as invalid (kept in the quarantine).", "rejected"),
    ("spooled_records_total", "Records written to the on-disk spool while the receiver was away.", "spooled"),
    ("quarantined_records_total", "Records moved to the quarantine.", "quarantined"),
)
_DROPS = (
    ("queue_full", "dropped_queue_full"),
    ("spool_full", "dropped_spool_full"),
    ("spool_expired", "dropped_spool_expired"),
    ("quarantine_full", "dropped_quarantine_full"),
)
_GAUGES = (
    ("queued_records", "Records in the in-memory queue now.", "queued"),
    ("spooled_bytes", "Bytes waiting in the spool now.", "spooled_bytes"),
    ("quarantined_bytes", "Bytes held in the quarantine now.", "quarantined_bytes"),
    ("receiver_down", "1 while the last attempt got no answer or a server error.", "server_down"),
    ("token_refused", "1 while the receiver refuses the token.", "token_refused"),
)


def prometheus_text(service: str, stats: DeliveryStats) -> str:
    """The counters of ``service``'s tracker as Prometheus text (version 0.0.4)."""
    from monitor.server.exposition import header, sample

    labels = {"service": service}
    parts: list[str] = []
    for name, help_, field in _COUNTERS:
        parts += [header(PREFIX + name, "counter", help_), sample(PREFIX + name, labels, getattr(stats, field))]
    dropped = PREFIX + "dropped_records_total"
    parts.append(header(dropped, "counter", "Records that will never be delivered, by reason."))
    parts += [sample(dropped, {**labels, "reason": reason}, getattr(stats, field)) for reason, field in _DROPS]
    for name, help_, field in _GAUGES:
        parts += [header(PREFIX + name, "gauge", help_), sample(PREFIX + name, labels, int(getattr(stats, field)))]
    return "".join(parts)
