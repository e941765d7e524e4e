"""``mwjobs chron``: the jobchron daemon's command."""

from __future__ import annotations

import logging

import click

from mwjobs.chron import Chron, ChronService, build_chron
from mwjobs.cli.options import EXIT_CONFIG, config_file_option
from mwjobs.config import RunnerConfig, load_config
from mwjobs.errors import ConfigError
from mwjobs.metrics import counters_for, host_name, memory_usage
from mwjobs.servicelog import configure_service_logging

__all__ = ["chron"]


@click.command("chron")
@config_file_option(required=True, help="The jobrunner.json to use")
@click.option("--verbose", is_flag=True, help="Log DEBUG lines too.")
@click.option("--once", is_flag=True, help="Run one pass and exit (1 if any part failed).")
@click.pass_context
def chron(ctx: click.Context, config_file: str, verbose: bool, once: bool) -> None:
    """Run the jobchron service: recycle, abandon, prune and undelay jobs on every queue
    partition and keep the ready-queue map up to date. SIGTERM/SIGINT stop it (exit 0),
    SIGHUP reloads the config file. A bad config at start exits 1 with the error."""
    configure_service_logging(verbose)
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        ctx.exit(EXIT_CONFIG)
    for warning in config.warnings:
        logging.getLogger("mwjobs.chron").warning("%s", warning)
    service = ChronService(config_file, config, _build_chron, memory=memory_usage)
    ctx.exit(service.run_once() if once else service.serve())


def _build_chron(config: RunnerConfig) -> Chron:
    return build_chron(config, counters_for(config.statsd), host=host_name())
