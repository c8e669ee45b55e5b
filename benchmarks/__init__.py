"""mlwatch's speed and memory benchmarks (``make bench``)."""
