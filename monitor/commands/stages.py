"""``mlwatch stage``: start a challenger's shadow, see it beside the champion, abort it.

Through the API (``--url``/``MLWATCH_URL``, ``--token``/``MLWATCH_TOKEN``; an operator's role
to start or abort, a viewer's to look), which calls ``retrain.stages``.

    $ mlwatch stage start credit 7            # version 7 in shadow beside the champion
    $ mlwatch stage show credit               # agreement, estimated and realized quality
    $ mlwatch stage abort credit --reason "wrong features"
"""

from __future__ import annotations

import json

import click

from monitor.commands.api import api_options, connect, path_part


@click.group()
def stage() -> None:
    """Rollout stages of a service's challengers (shadow; canary is not available yet)."""


@stage.command()
@click.argument("service")
@click.argument("version")
@click.option("--stage", "name", default="shadow", show_default=True, help="The stage to start.")
@api_options
@click.pass_context
def start(ctx: click.Context, service: str, version: str, name: str, url: str | None, api_token: str | None) -> None:
    """Put VERSION of SERVICE in a stage: in shadow, `mlwatch serve` scores it beside the champion."""
    with connect(ctx, url, api_token) as api:
        body = {"version": version, "stage": name}
        click.echo(json.dumps(api.call("POST", f"/v1/services/{path_part(service)}/stages", json=body)))


@stage.command()
@click.argument("service")
@api_options
@click.pass_context
def show(ctx: click.Context, service: str, url: str | None, api_token: str | None) -> None:
    """The stages of SERVICE, the active one compared with the champion on the same rows."""
    with connect(ctx, url, api_token) as api:
        click.echo(json.dumps(api.call("GET", f"/v1/services/{path_part(service)}/stages"), indent=2))


@stage.command()
@click.argument("service")
@click.option("--reason", default="aborted by an operator", show_default=True)
@api_options
@click.pass_context
def abort(ctx: click.Context, service: str, reason: str, url: str | None, api_token: str | None) -> None:
    """End the stage SERVICE has in progress (its shadow stops at `mlwatch serve`'s next poll)."""
    with connect(ctx, url, api_token) as api:
        body = {"reason": reason}
        click.echo(json.dumps(api.call("DELETE", f"/v1/services/{path_part(service)}/stages", json=body)))
