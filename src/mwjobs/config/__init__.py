"""Load ``jobrunner.json`` (the PHP jobrunner service's format) into typed, frozen objects.

This is the only package that reads raw configuration; everything else takes a
:class:`RunnerConfig`. The file format is the PHP service's (jobrunner.sample.json) plus our
extensions,
which the PHP service ignores or never sees:

* ``//`` comments are removed only outside JSON strings, so ``http://`` URLs survive
  (the PHP regex cut them, see docs/compatibility.md). ``/* */`` comments are refused, as PHP does.
* ``"dispatcher"`` may be the original command string or an object
  ``{"kind": "command" | "http" | "python", ...}``.
* ``"mwjobs": {"timing": {...}}`` overrides what the PHP service hard-codes
  (:class:`TimingConfig`).
* ``"mwjobs": {"queues": {...}}`` says where the queues are with backend URLs, instead of
  ``redis``; either way :attr:`RunnerConfig.queues` holds them (:class:`QueuesConfig`).

Every error is a :class:`~mwjobs.errors.ConfigError` whose message names the file, the key
path (``groups.basic.runners``), what was found and how to fix it. docs/configuration.md is
the reference for every key.

The modules: ``schema`` (every key, declared once), ``reading`` (file, comments, JSON
syntax), ``values`` (checks of one value), ``validate`` and ``dispatcher`` (the sections),
``model`` (the objects), ``render`` (what check-config shows), ``load`` (the entry points)
and ``docs`` (``python -m mwjobs.config.docs > docs/configuration.md``).
"""

from __future__ import annotations

from mwjobs.config.load import load_config, parse_config
from mwjobs.config.model import (
    PLACEHOLDERS,
    CommandDispatcherConfig,
    DispatcherConfig,
    GroupConfig,
    HttpDispatcherConfig,
    LimitMap,
    LimitsConfig,
    PythonDispatcherConfig,
    QueuesConfig,
    RedisConfig,
    RunnerConfig,
    StatsdConfig,
    TimingConfig,
)
from mwjobs.config.reading import strip_comments

__all__ = [
    "PLACEHOLDERS",
    "CommandDispatcherConfig",
    "DispatcherConfig",
    "GroupConfig",
    "HttpDispatcherConfig",
    "LimitMap",
    "LimitsConfig",
    "PythonDispatcherConfig",
    "QueuesConfig",
    "RedisConfig",
    "RunnerConfig",
    "StatsdConfig",
    "TimingConfig",
    "load_config",
    "parse_config",
    "strip_comments",
]
