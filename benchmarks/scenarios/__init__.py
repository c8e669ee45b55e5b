"""The scenario suite: the retrain loop replayed through real processes on drift stories with
known answers (``make scenarios``; see ``benchmarks/scenarios/README.md`` for the figures)."""
