"""``mlwatch stage``: start a challenger's shadow or canary, see it beside the champion, abort it.

Through the API (``--url``/``MLWATCH_URL``, ``--token``/``MLWATCH_TOKEN``; an operator's role
to start or abort, a viewer's to look), which calls ``retrain.stages``.

    $ mlwatch stage start credit 7            # version 7 in shadow beside the champion
    $ mlwatch stage start credit 7 --stage canary --share 0.05   # 5% of requests
    $ mlwatch stage show credit               # agreement, estimated and realized quality
    $ mlwatch stage abort credit --reason "wrong features"
"""

from __future__ import annotations

import json

import click

from monitor.commands.api import api_options, connect, path_part


@click.group()
def stage() -> None:
    """Rollout stages of a service's challengers: shadow, canary."""


@stage.command()
@click.argument("service")
@click.argument("version")
@click.option("--stage", "name", default="shadow", show_default=True, help="The stage to start: shadow or canary.")
@click.option("--share", type=float, default=None, help="A canary's share of requests (default: the policy's).")
@api_options
@click.pass_context
def start(
    ctx: click.Context,
    service: str,
    version: str,
    name: str,
    share: float | None,
    url: str | None,
    api_token: str | None,
) -> None:
    """Put VERSION of SERVICE in a stage: in shadow, `mlwatch serve` scores it beside the
    champion; in canary, it answers a share of the requests until it held or is rolled back."""
    with connect(ctx, url, api_token) as api:
        body: dict[str, object] = {"version": version, "stage": name}
        if share is not None:
            body["share"] = share
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
    """End the stage SERVICE has in progress (it stops at `mlwatch serve`'s next poll)."""
    with connect(ctx, url, api_token) as api:
        body = {"reason": reason}
        click.echo(json.dumps(api.call("DELETE", f"/v1/services/{path_part(service)}/stages", json=body)))
