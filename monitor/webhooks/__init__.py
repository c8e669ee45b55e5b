"""Webhooks: signed events from a persisted outbox, delivered at least once by the worker.

events.py     emit(): one outbox row per receiver that an event is routed to
formats.py    how a body looks for a receiver, by format: generic JSON (mlwatch.event/v1), Slack, and
alertmanager.py, pagerduty.py, msteams.py  the Alertmanager, PagerDuty Events v2 and Teams formats
presentation.py what every format shows: headline, dashboard link, RFC 3339 time
routing.py    which receivers get an event (severity, labels, event types)
signing.py    Standard Webhooks HMAC-SHA256 signatures (``whsec_`` secrets accepted)
receivers.py  receiver URL and address checks (scheme, private and v4-carrying addresses)
connection.py the delivery connection: resolve once, check, connect to the checked address
retry.py      exponential backoff with jitter, ``Retry-After``, the retry horizon
delivery.py   the worker's sender: claims due rows, posts them, records every attempt
tasks.py      the worker task that runs delivery
"""
