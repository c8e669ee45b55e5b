"""Webhooks: signed events from a persisted outbox, delivered at least once by the worker.

events.py     emit(): one outbox row per receiver that an event is routed to
formats.py    how a body looks for a receiver, by format: generic JSON (mlwatch.event/v1), Slack, and
alertmanager.py, pagerduty.py, msteams.py  the Alertmanager, PagerDuty Events v2 and Teams formats
mail.py       the email format: subject, plain text and HTML stating the same facts
presentation.py what every format shows: headline, dashboard link, RFC 3339 time, an event's alerts
routing.py    which receivers get an event (severity, labels, event types)
signing.py    Standard Webhooks HMAC-SHA256 signatures (``whsec_`` secrets accepted)
receivers.py  receiver URL and address checks (scheme, private and v4-carrying addresses)
connection.py the delivery connection: resolve once, check, connect to the checked address
retry.py      exponential backoff with jitter, ``Retry-After``, the retry horizon
transports.py how a row reaches its receiver: HTTP (signed POST) or SMTP (smtp.py), one ``send``
smtp.py       the SMTP transport: STARTTLS or implicit TLS, AUTH, to checked addresses only
delivery.py   the worker's sender: claims due rows, sends them, records every attempt
tasks.py      the worker task that runs delivery
"""
