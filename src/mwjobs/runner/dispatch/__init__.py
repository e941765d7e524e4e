"""Dispatchers: how the runner hands one (type, wiki) batch to MediaWiki (a strategy).

:mod:`.base` defines the interface (:class:`Dispatcher` starts a :class:`Run`, whose
:class:`RunOutcome` the loop collects); :mod:`.command` runs a process per batch and
:mod:`.http` POSTs to MediaWiki. :func:`build_dispatcher` picks one from the config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mwjobs.config import CommandDispatcher as CommandConfig
from mwjobs.config import HttpDispatcher as HttpConfig
from mwjobs.config import RunnerConfig
from mwjobs.runner.dispatch.base import (
    Dispatcher,
    DispatchError,
    Run,
    RunOutcome,
    RunRequest,
    Watch,
    escapeshellarg,
    substitute,
)
from mwjobs.runner.dispatch.command import CommandDispatcher
from mwjobs.runner.dispatch.http import HttpDispatcher

__all__ = [
    "CommandDispatcher",
    "DispatchError",
    "Dispatcher",
    "HttpDispatcher",
    "Run",
    "RunOutcome",
    "RunRequest",
    "Watch",
    "build_dispatcher",
    "escapeshellarg",
    "substitute",
]


def build_dispatcher(
    config: RunnerConfig,
    *,
    wake: Callable[[], None],
    environ: Mapping[str, str] | None = None,
) -> Dispatcher:
    """The dispatcher of ``config.dispatcher``; :class:`DispatchError` for a kind this runner
    cannot run or a setting that can never work (missing secret variable). ``wake`` is
    called (from any thread) when a run without file descriptors ends."""
    disp = config.dispatcher
    if isinstance(disp, CommandConfig):
        return CommandDispatcher(disp)
    if isinstance(disp, HttpConfig):
        return HttpDispatcher.from_config(disp, environ, wake)
    raise DispatchError(
        f'{config.source}: dispatcher.kind "{disp.kind}" is not supported by the runner yet; '
        'use "command" or "http"'
    )
