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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from mwjobs.errors import ConfigError
from mwjobs.queues.base import Clock, EventSink, QueueBackend

if TYPE_CHECKING:
    from mwjobs.queues.farm import ErrorSink, QueueFarm

__all__ = [
    "BACKENDS",
    "BackendLocation",
    "BackendOpener",
    "FarmOpener",
    "farm_opener",
    "location_of",
    "open_backend",
    "scheme_of",
]


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


class FarmOpener(Protocol):
    """A backend's ``open_farm``: what the services need from storage
    (:class:`~mwjobs.queues.farm.QueueFarm`) over ``partitions`` of that backend."""

    def __call__(
        self,
        partitions: Sequence[BackendLocation],
        aggregators: Sequence[BackendLocation],
        *,
        clock: Clock,
        on_error: ErrorSink | None,
    ) -> QueueFarm: ...


@dataclass(frozen=True)
class _Entry:
    module: str  # defines open_location (BackendOpener); imported on first use
    farm: str  # defines open_farm (FarmOpener); imported on first use
    extra: str | None  # the pip extra that brings its driver, if any


_REDIS = _Entry("mwjobs.queues.redis.backend", "mwjobs.queues.redis.farm", None)
_REDIS_SCHEMES = ("redis", "rediss", "unix")

# scheme -> where its backend lives.
BACKENDS: dict[str, _Entry] = {
    **{scheme: _REDIS for scheme in _REDIS_SCHEMES},
    "memory": _Entry("mwjobs.queues.memory", "mwjobs.queues.memory_farm", None),
}


def location_of(text: str, *, password: str | None = None) -> BackendLocation:
    """The location written as ``text``: a backend URL, or a bare Redis server string
    (``host``, ``host:port``, ``/path/to.sock``: MediaWiki's ``redisServer`` forms).
    Redis locations are written canonically, their password moved out of the URL (so the
    URL can be shown); ConfigError when the text is neither."""
    scheme = scheme_of(text)
    if scheme and scheme not in _REDIS_SCHEMES:
        _entry(BackendLocation(text))  # a clear error for an unknown scheme
        return BackendLocation(text, password)
    from mwjobs.queues.redis.endpoint import parse_redis_endpoint  # noqa: PLC0415 - pure

    endpoint = parse_redis_endpoint(text, password=password)
    return BackendLocation(endpoint.url, endpoint.password)


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
    where = location_of(location) if isinstance(location, str) else location
    opener: BackendOpener = _import(where, farm=False).open_location
    return opener(where, clock=clock, on_event=on_event)


def farm_opener(location: BackendLocation) -> FarmOpener:
    """The ``open_farm`` of the backend at ``location`` (used by
    :func:`mwjobs.queues.farm.open_farm`)."""
    opener: FarmOpener = _import(location, farm=True).open_farm
    return opener


def _entry(where: BackendLocation) -> _Entry:
    entry = BACKENDS.get(where.scheme)
    if entry is None:
        known = ", ".join(f"{scheme}://" for scheme in sorted(BACKENDS))
        raise ConfigError(f"{where.display!r} is not a queue backend URL; use one of: {known}")
    return entry


def _import(where: BackendLocation, *, farm: bool) -> Any:
    """The module of ``where``'s backend (its farm module with ``farm``)."""
    entry = _entry(where)
    try:
        return importlib.import_module(entry.farm if farm else entry.module)
    except ModuleNotFoundError as exc:
        if entry.extra is None or not exc.name or exc.name.startswith("mwjobs"):
            raise
        raise ConfigError(
            f"the {where.scheme}:// backend needs the {exc.name!r} package, which is not "
            f"installed; run: pip install 'mwjobs[{entry.extra}]'"
        ) from None
