"""``mwjobs runner``: the jobrunner daemon's command."""

from __future__ import annotations

import logging

import click

from mwjobs.cli.options import EXIT_CONFIG, config_file_option
from mwjobs.config import load_config
from mwjobs.errors import ConfigError
from mwjobs.runner.dispatch import DispatchError
from mwjobs.runner.service import Runner
from mwjobs.servicelog import configure_service_logging

__all__ = ["runner"]



@click.command("runner")
@config_file_option(required=True, help="The jobrunner.json to use")
@click.option("--verbose", is_flag=True, help="Log DEBUG lines too (every spawn and result).")
@click.pass_context
def runner(ctx: click.Context, config_file: str, verbose: bool) -> None:
    """Run the jobrunner service: for each group with runners, that many slots, each
    dispatching batches from the ready queues. SIGTERM/SIGINT stop it (running batches get
    SIGTERM, then SIGKILL after stop_grace; exit 0), SIGHUP reloads the config file and
    resizes the groups without stopping running batches. A bad config or a dispatcher that
    cannot work (program not found, secret variable unset) exits 1 with the error."""
    configure_service_logging(verbose)
    try:
        config = load_config(config_file)
        for warning in config.warnings:
            logging.getLogger("mwjobs.runner").warning("%s", warning)
        service = Runner(config, config_path=config_file)
    except (ConfigError, DispatchError) as exc:
        click.echo(str(exc), err=True)
        ctx.exit(EXIT_CONFIG)
    ctx.exit(service.serve())
