"""The ``mlwatch`` command line.

Subcommands are imported only when run (``LazyGroup``), so ``mlwatch --help`` and light
commands start fast: mlflow, evidently and streamlit load only where a command needs them.
Each capability keeps its commands in its own module and adds one line to ``COMMANDS``.
Shell completion is click's (``_MLWATCH_COMPLETE=bash_source mlwatch``); it imports only the
commands whose names start with what was typed (all of them for an empty word: about 1 s).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from monitor import __version__

COMMANDS: dict[str, str] = {
    "server": "monitor.commands.server:server",
    "token": "monitor.commands.admin:token",
    "db": "monitor.commands.admin:db",
    "demo": "monitor.commands.demo:demo",
    "worker": "monitor.commands.worker:worker",
    "retrain": "monitor.commands.models:retrain",
    "promote": "monitor.commands.models:promote",
    "rollback": "monitor.commands.models:rollback",
    "serve": "monitor.commands.models:serve",
    "stage": "monitor.commands.stages:stage",
    "dashboard": "monitor.commands.dashboard:dashboard",
    "user": "monitor.commands.dashboard:user",
    "agent": "monitor.commands.collectors:agent",
    "proxy": "monitor.commands.collectors:proxy",
    "ingest": "monitor.commands.batch:ingest",
    "check": "monitor.commands.checks:check",
    "reference": "monitor.commands.checks:reference",
    "consume": "monitor.commands.stream:consume",
    "rules": "monitor.commands.rules:rules",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are ``module:attribute`` strings imported on use."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


COMPLETION = """\b
Shell completion (commands, options, choices), in ~/.bashrc, ~/.zshrc or fish's config:
  eval "$(_MLWATCH_COMPLETE=bash_source mlwatch)"
  eval "$(_MLWATCH_COMPLETE=zsh_source mlwatch)"
  _MLWATCH_COMPLETE=fish_source mlwatch | source
"""


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=COMPLETION,
)
@click.version_option(__version__, prog_name="mlwatch")
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar="MLWATCH_CONFIG",
    help="Path of mlwatch.yaml (default: ./mlwatch.yaml).",
)
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """mlwatch keeps deployed machine-learning models healthy."""
    ctx.obj = {"config": config}
