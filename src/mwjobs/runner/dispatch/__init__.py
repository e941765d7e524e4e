"""Dispatchers: how the runner hands one (type, wiki) batch to MediaWiki (a strategy).

:mod:`.base` defines the interface (:class:`Dispatcher` starts a :class:`Run`, whose
:class:`RunOutcome` the loop collects); :mod:`.command` runs a process per batch,
:mod:`.http` POSTs to MediaWiki and :mod:`.python` hands the batch to a pool of persistent
Python workers. :func:`build_dispatcher` picks one from the config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mwjobs.config import CommandDispatcherConfig, HttpDispatcherConfig, RunnerConfig
from mwjobs.runner.dispatch.base import (
    Dispatcher,
    DispatchError,
    DispatchHalt,
    Run,
    RunOutcome,
    RunRequest,
    Watch,
    escapeshellarg,
    substitute,
)
from mwjobs.runner.dispatch.command import CommandDispatcher
from mwjobs.runner.dispatch.http import HttpDispatcher
from mwjobs.runner.dispatch.python import PythonDispatcher

__all__ = [
    "CommandDispatcher",
    "DispatchError",
    "DispatchHalt",
    "Dispatcher",
    "HttpDispatcher",
    "PythonDispatcher",
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
    """The dispatcher of ``config.dispatcher``; :class:`DispatchError` for a setting that
    can never work (missing secret variable). ``wake`` is called (from any thread) when a
    run without file descriptors ends. ``environ`` is where secrets are looked up; python
    workers inherit the runner's own environment. The python dispatcher starts its workers
    in :meth:`Dispatcher.check`."""
    disp = config.dispatcher
    if isinstance(disp, CommandDispatcherConfig):
        return CommandDispatcher(disp)
    if isinstance(disp, HttpDispatcherConfig):
        return HttpDispatcher.from_config(disp, environ, wake)
    return PythonDispatcher.from_config(config)
