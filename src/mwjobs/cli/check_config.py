"""``mwjobs check-config``: validate a config file and show what the services would use."""

from __future__ import annotations

import json

import click

from mwjobs.cli.options import EXIT_CONFIG, config_file_option
from mwjobs.config import load_config
from mwjobs.errors import ConfigError

__all__ = ["check_config"]


@click.command("check-config")
@click.argument("file", required=False, metavar="[FILE]")
@config_file_option(required=False, help="The jobrunner.json to check, instead of FILE")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no secrets).")
@click.pass_context
def check_config(
    ctx: click.Context, file: str | None, config_file: str | None, as_json: bool
) -> None:
    """Validate a config file and show what the services would use.

    Exits 0 if the file is valid, 1 (message on stderr) if not.
    """
    config_file = file or config_file
    if not config_file:
        raise click.UsageError("name the config file: mwjobs check-config FILE")
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        ctx.exit(EXIT_CONFIG)
    click.echo(json.dumps(config.to_dict(), indent=2) if as_json else config.summary())
