"""``python -m monitor`` is ``mlwatch``; ``run`` is also the ``mlwatch`` console script.

Where only the SDK is installed (``pip install mlwatch``), the command line has none of its
libraries (click first); a command then prints the exact install command and exits with
status 1, instead of a traceback:

    $ mlwatch server
    mlwatch: the server part of mlwatch is not installed (no module named 'click'): pip install 'mlwatch[server]'
"""

from __future__ import annotations

import sys

from monitor.extras import missing_extra_message


def run(args: list[str] | None = None) -> None:
    """Run the ``mlwatch`` command line on ``args`` (default ``sys.argv[1:]``)."""
    try:
        from monitor.cli import main

        main(args=args)
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        sys.exit(message)


if __name__ == "__main__":  # not when a child process (``multiprocessing`` spawn) imports this module
    run()
