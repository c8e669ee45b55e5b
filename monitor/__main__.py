"""``python -m monitor`` is ``mlwatch``."""

from monitor.cli import main

if __name__ == "__main__":  # not when a child process (``multiprocessing`` spawn) imports this module
    main()
