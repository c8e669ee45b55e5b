"""``mlwatch rules export``: the configured alert rules as a Prometheus rules file.

    $ mlwatch rules export --config mlwatch.yaml -o mlwatch-rules.yml
    skipped quality-decay (quality_decay): kind quality_decay compares quality with the reference, ...
    wrote 3 of 4 alert rules to mlwatch-rules.yml (group mlwatch)

The file is what Prometheus's ``rule_files`` takes (``promtool check rules`` passes it); the
expressions read mlwatch's ``/metrics``, so Prometheus must scrape it (``deploy/prometheus.yml``).
Rules that the metrics cannot express are named on stderr with the reason; stdout (the
default output) carries only the YAML, so it can be piped.
"""

from __future__ import annotations

import click

from monitor.commands import settings_from
from monitor.errors import ConfigError
from monitor.settings import load_settings


@click.group()
def rules() -> None:
    """Alert rules in other systems' forms."""


@rules.command("export")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="mlwatch.yaml to read (default: mlwatch's).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="File to write (default: stdout).")
@click.pass_context
def rules_export(ctx: click.Context, config: str | None, output: str | None) -> None:
    """Write the alert rules that mlwatch's Prometheus metrics can express as a Prometheus rules file."""
    import yaml

    from monitor.alerts.prometheus import GROUP, export_rules

    try:
        settings = load_settings(config) if config else settings_from(ctx)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    document, skipped = export_rules(settings.alerts)
    for left_out in skipped:
        click.echo(f"skipped {left_out.rule} ({left_out.kind}): {left_out.reason}", err=True)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000)
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)
    written = len(document["groups"][0]["rules"])
    where = output or "stdout"
    click.echo(f"wrote {written} of {len(settings.alerts)} alert rules to {where} (group {GROUP})", err=True)
