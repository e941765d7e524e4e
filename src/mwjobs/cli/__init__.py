"""The ``mwjobs`` command line: one click group, one module per subcommand.

Commands return data and exit statuses (:mod:`mwjobs.daemon`); the services they start
live in the layers below (``chron``, ``runner``, ``execution``).
"""

from __future__ import annotations

import click

from mwjobs import __version__
from mwjobs.cli.check_config import check_config
from mwjobs.cli.chron import chron
from mwjobs.cli.run_jobs import run_jobs
from mwjobs.cli.runner import runner

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mwjobs")
def cli() -> None:
    """MediaWiki's job queue system: queues, jobrunner and jobchron, in Python."""


for command in (check_config, chron, run_jobs, runner):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli()
