"""Shell completion of the installed ``mlwatch`` console script (click's ``_MLWATCH_COMPLETE``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main

SCRIPT = Path(sys.executable).with_name("mlwatch")


def _complete(words: str, shell: str = "bash") -> list[str]:
    env = {
        **os.environ,
        "_MLWATCH_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    done = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.splitlines()


pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason=f"no console script at {SCRIPT} (pip install -e .)")


def test_the_console_script_prints_a_bash_completion_function() -> None:
    env = {**os.environ, "_MLWATCH_COMPLETE": "bash_source"}
    done = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "_mlwatch_completion()" in done.stdout
    assert "complete -o nosort -F _mlwatch_completion mlwatch" in done.stdout


def test_completion_lists_lazy_subcommands_and_their_options() -> None:
    assert _complete("mlwatch ing") == ["plain,ingest"]
    assert _complete("mlwatch ingest --dir") == ["plain,--direct"]
    assert _complete("mlwatch check --js") == ["plain,--json"]
    assert "plain,reference" in _complete("mlwatch ")


def test_help_says_how_to_turn_completion_on_for_each_shell() -> None:
    shown = CliRunner().invoke(main, ["--help"], prog_name="mlwatch").output
    for line in (
        'eval "$(_MLWATCH_COMPLETE=bash_source mlwatch)"',
        'eval "$(_MLWATCH_COMPLETE=zsh_source mlwatch)"',
        "_MLWATCH_COMPLETE=fish_source mlwatch | source",
    ):
        assert line in shown
