"""``python -m retrain.job JOB_ID``: run one claimed retrain job in a process of its own.

The worker starts this with the settings as JSON on stdin, so a job can be cancelled or
timed out by ending the process, and a crash in training never takes the worker down.
Exit status: 0 succeeded, 1 failed, 2 cancelled (the outcome is also in the store).
"""

from __future__ import annotations

import logging
import os
import sys

from monitor.config import Settings
from monitor.store import Store
from retrain.errors import JobCancelled
from retrain.registry import Registry
from retrain.runner import JobRunner


def main(argv: list[str]) -> int:
    """Run the job named in ``argv``; the settings come as JSON on stdin."""
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = Settings.model_validate_json(sys.stdin.read())
    store = Store.open(settings.store_url, migrate=False)
    try:
        JobRunner(store, settings, Registry.from_settings(settings, store)).run(store.get_job(int(argv[0])))
    except JobCancelled:
        return 2
    except Exception:
        logging.getLogger("mlwatch.retrain").exception("job %s failed", argv[0])
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
