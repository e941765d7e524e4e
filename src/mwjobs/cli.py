"""The ``mwjobs`` command line: one command with subcommands."""

from __future__ import annotations

import click

from mwjobs import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mwjobs")
def cli() -> None:
    """MediaWiki's job queue system: queues, jobrunner and jobchron, in Python."""


def main() -> None:
    """Console-script entry point."""
    cli()
