"""``mlwatch demo``: the whole loop on one machine, on embedded defaults."""
