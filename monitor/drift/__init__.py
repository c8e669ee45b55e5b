"""Drift and quality checks of a service's windows, with Evidently's statistics.

One module per concept:

- ``reference``: reference (training) data in and out, and its per-column statistics;
- ``window``: a bounded sample of a window as a frame (features, prediction, label);
- ``stattests``: Evidently's stattests and default test selection, one column at a time;
- ``data_quality``: missing values, new categories, out-of-range values, type mismatches;
- ``quality``: realized model quality, the baseline and the decay;
- ``estimate``: label-free quality estimation (the CBPE idea) from predicted probabilities;
- ``loaded``: a reference as checks use it, with what they derive from it kept per process;
- ``check``: the runner that puts these together and stores a check;
- ``schedule``: the worker's tumbling-window task; ``report``: the on-demand HTML report.

Importing this package is cheap; Evidently loads only with ``stattests`` and ``report``.
"""
