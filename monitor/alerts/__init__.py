"""Alerts: rules evaluated every tick, one alert per rule and scope, notified through the outbox.

kinds.py         the registry of rule kinds, keyed by the ``kind`` string rules persist
observations.py  what a kind reports per scope: value, breached or not, a summary
sources.py       where kinds read metrics (checks, traffic, host samples) - a protocol
drift.py         drift_share, feature_drift, prediction_drift, quality_decay
traffic.py       latency, error_rate, no_data
resources.py     resource (CPU, memory, GPU utilization or memory, per host)
lifecycle.py     pending -> firing -> resolved; reminders, silences, acknowledgement
engine.py        one tick: evaluate every enabled rule, apply the changes in one transaction
tasks.py         the worker task that ticks the engine
acknowledge.py   an operator's acknowledgement and its alert.acknowledged event, in one transaction
"""
