"""``python -m monitor`` is ``mlwatch``."""

from monitor.cli import main

main()
