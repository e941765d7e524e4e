"""Pick a queue backend in one place: :func:`open_backend` by the scheme of a URL.

==================================  =======================================================
URL                                 backend
==================================  =======================================================
``redis://[user@]host:port/db``     :class:`~mwjobs.queues.redis.RedisBackend` (MediaWiki's
``rediss://…`` ``unix:///path?db=N``  JobQueueRedis layout); a password comes separately
``memory://``                       :class:`~mwjobs.queues.memory.MemoryBackend` (this
                                    process only: tests, embedded use)
==================================  =======================================================

A backend's module is imported only when a URL of its scheme is opened, so a deployment
without a driver never imports it; a missing driver is a :class:`ConfigError` that says
which extra to install. New backends add a row to :data:`BACKENDS`: nothing else (the
runner, the chron, run-jobs, the python workers) names a backend.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from mwjobs.errors import ConfigError
from mwjobs.queues.base import Clock, EventSink, QueueBackend

__all__ = ["BACKENDS", "BackendLocation", "BackendOpener", "open_backend", "scheme_of"]


@dataclass(frozen=True)
class BackendLocation:
    """Where one queue backend is: a URL whose scheme picks the backend, and a password
    kept apart from it so that the URL can be shown and logged as it is."""

    url: str
    password: str | None = field(default=None, repr=False)

    @property
    def scheme(self) -> str:
        return scheme_of(self.url)

    @property
    def display(self) -> str:
        """The URL for messages (it never holds the password)."""
        return self.url

    def __str__(self) -> str:
        return self.url


class BackendOpener(Protocol):
    """A backend module's ``open_location``: the backend at ``location``, not connected."""

    def __call__(
        self, location: BackendLocation, *, clock: Clock, on_event: EventSink | None
    ) -> QueueBackend: ...


@dataclass(frozen=True)
class _Entry:
    module: str  # imported on first use
    extra: str | None  # the pip extra that brings its driver, if any


# scheme -> where its opener lives. Each module defines ``open_location`` (BackendOpener).
BACKENDS: dict[str, _Entry] = {
    "redis": _Entry("mwjobs.queues.redis.backend", None),
    "rediss": _Entry("mwjobs.queues.redis.backend", None),
    "unix": _Entry("mwjobs.queues.redis.backend", None),
    "memory": _Entry("mwjobs.queues.memory", None),
}


def scheme_of(url: str) -> str:
    """The lower-cased scheme of ``url`` ("" when it has none)."""
    return urlsplit(url).scheme.lower() if "://" in url else ""


def open_backend(
    location: BackendLocation | str,
    *,
    clock: Clock = time.time,
    on_event: EventSink | None = None,
) -> QueueBackend:
    """The backend at ``location`` (nothing connects until its first operation).

    Raises :class:`ConfigError` for a URL without a known scheme, or when the backend's
    driver is not installed (the message names the pip extra).
    """
    where = BackendLocation(location) if isinstance(location, str) else location
    entry = BACKENDS.get(where.scheme)
    if entry is None:
        known = ", ".join(f"{scheme}://" for scheme in sorted(BACKENDS))
        raise ConfigError(
            f"{where.display!r} is not a queue backend URL; use one of: {known}"
        )
    opener = _opener(entry, where)
    return opener(where, clock=clock, on_event=on_event)


def _opener(entry: _Entry, where: BackendLocation) -> BackendOpener:
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if entry.extra is None or not exc.name or exc.name.startswith("mwjobs"):
            raise
        raise ConfigError(
            f"the {where.scheme}:// backend needs the {exc.name!r} package, which is not "
            f"installed; run: pip install 'mwjobs[{entry.extra}]'"
        ) from None
    opener: Callable[..., QueueBackend] = module.open_location
    return opener
