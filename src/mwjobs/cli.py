"""The ``mwjobs`` command line: one command with subcommands."""

from __future__ import annotations

import json
import logging

import click

from mwjobs import __version__
from mwjobs.chron import Chron, ChronService, build_chron
from mwjobs.cliopts import EXIT_CONFIG, config_file_option
from mwjobs.config import RunnerConfig, load_config
from mwjobs.errors import ConfigError
from mwjobs.metrics import counters_for, host_name, memory_usage
from mwjobs.run_jobs import run_jobs
from mwjobs.runner.cli import runner
from mwjobs.servicelog import configure_service_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mwjobs")
def cli() -> None:
    """MediaWiki's job queue system: queues, jobrunner and jobchron, in Python."""


@cli.command("check-config")
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


@cli.command("chron")
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


cli.add_command(run_jobs)
cli.add_command(runner)


def main() -> None:
    """Console-script entry point."""
    cli()
