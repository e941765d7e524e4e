"""What the ``mwjobs`` subcommands share: the config-file option and the exit status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mwjobs.daemon import EXIT_CONFIG

__all__ = ["CONFIG_ENV", "EXIT_CONFIG", "config_file_option"]

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_ENV = "MWJOBS_CONFIG_FILE"


def config_file_option(*, required: bool, help: str) -> Callable[[F], F]:
    """``--config-file PATH``, also read from ``$MWJOBS_CONFIG_FILE``."""
    return click.option(
        "--config-file",
        required=required,
        envvar=CONFIG_ENV,
        metavar="PATH",
        help=f"{help} (env: {CONFIG_ENV}).",
    )
