"""What the services need from storage, as contracts a backend implements.

The chron and the runner never name a backend. They get a :class:`QueueFarm` from
:func:`open_farm` (picked by the scheme of the configured partitions, through
:mod:`mwjobs.queues.backends`) and use only what is declared here:

* ``partitions``: the backends holding queues (the chron maintains each one);
* :meth:`QueueFarm.ready_map_store`: where the ready-queue map is kept
  (:class:`ReadyMapStore`; :mod:`mwjobs.aggregator` encodes and caches it);
* :meth:`QueueFarm.pool_lock`: the chron pool lock (:class:`PoolLock`);
* :meth:`QueueFarm.push_listener`: wake-ups when a partition gets ready jobs
  (:class:`PushListener`), for backends that can tell.

Redis implements them in :mod:`mwjobs.queues.redis.farm` (MediaWiki's aggregator keys and
the PHP chron's lock), the memory backend in :mod:`mwjobs.queues.memory_farm`.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mwjobs.errors import ConfigError
from mwjobs.queues.backends import BackendLocation, farm_opener
from mwjobs.queues.base import Clock, QueueBackend

__all__ = [
    "ErrorSink",
    "PoolLock",
    "PushListener",
    "QueueFarm",
    "ReadyMapStore",
    "open_farm",
]

# Called with a server's display name each time an operation on it fails (the daemons
# count ``redis-error.<host>``, the PHP services' name for any queue-server error).
ErrorSink = Callable[[str], None]


class ReadyMapStore(Protocol):
    """Where the ready-queue map's raw fields live. Both methods raise a
    :class:`~mwjobs.errors.MwJobsError` subclass when the storage cannot be reached."""

    def replace(self, fields: Mapping[str, str]) -> None:
        """Replace the whole map with ``fields`` at once (readers never see a partial one)."""

    def fetch(self) -> dict[str, str]:
        """Every raw field and value of the map (empty if there is none)."""


class PoolLock(Protocol):
    """The chron pool lock: a few slots, so only that many chrons run a pass at once."""

    def acquire(self, now: float) -> int | None:
        """Take a free or stale slot; its number, or None when all are held."""

    def refresh(self, slot: int, now: float) -> None:
        """Keep a held slot from going stale during a long pass."""

    def release(self, slot: int) -> bool:
        """Free a held slot; False if it was no longer ours."""


class PushListener(Protocol):
    """Wake-ups from one partition: which queues just got ready jobs. Connects on first
    use; raises :class:`~mwjobs.errors.QueueError` when the subscription fails (close it
    and make a new one later)."""

    @property
    def name(self) -> str:
        """The partition's name, as in :attr:`QueueFarm.partitions`."""

    def fileno(self) -> int:
        """A descriptor that turns readable when wake-ups are waiting (for a selector)."""

    def poll(self, timeout: float = 0.0) -> set[tuple[str, str]]:
        """The (type, domain) queues named since the last call; empty if none."""

    def close(self) -> None:
        """Release the subscription."""


class QueueFarm(abc.ABC):
    """The storage side of one deployment, as the services see it. Nothing connects until
    first use; :meth:`close` releases every connection (later use reconnects)."""

    def __init__(self, partitions: Mapping[str, QueueBackend]) -> None:
        if not partitions:
            raise ValueError("a queue farm needs at least one partition")
        #: partition name (for messages and metrics) -> backend
        self.partitions = dict(partitions)

    @abc.abstractmethod
    def ready_map_store(self) -> ReadyMapStore:
        """The store of the ready-queue map."""

    @abc.abstractmethod
    def pool_lock(self, *, ttl: float) -> PoolLock:
        """The chron pool lock (as many slots as partitions: the PHP chron's rule); a slot
        held longer than ``ttl`` seconds is stale."""

    def push_listener(self, partition: str) -> PushListener | None:
        """Wake-ups for pushes to ``partition``, or None when the backend has none."""
        return None

    def close(self) -> None:
        for backend in self.partitions.values():
            backend.close()


def open_farm(
    partitions: Sequence[BackendLocation],
    aggregators: Sequence[BackendLocation] = (),
    *,
    clock: Clock = time.time,
    on_error: ErrorSink | None = None,
) -> QueueFarm:
    """The farm of ``partitions`` (all of one kind of backend), with the ready-queue map
    and the chron lock on ``aggregators`` where the backend keeps them apart."""
    if not partitions:
        raise ConfigError("no queue partitions are configured")
    openers = {farm_opener(location) for location in partitions}
    if len(openers) > 1:
        schemes = sorted({location.scheme for location in partitions})
        raise ConfigError(
            f"queue partitions of different backends ({', '.join(schemes)}) cannot "
            "share one farm; give each service partitions of one backend"
        )
    (opener,) = openers
    return opener(partitions, aggregators, clock=clock, on_error=on_error)
