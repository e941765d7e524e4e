"""The services' storage in one process's memory (:class:`~mwjobs.queues.farm.QueueFarm`):
``memory://NAME`` partitions, with the ready-queue map and the chron lock kept beside them.
For a chron and a runner in one process (tests, embedded use)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from mwjobs.queues.backends import BackendLocation, open_backend
from mwjobs.queues.base import Clock
from mwjobs.queues.farm import ErrorSink, QueueFarm

__all__ = ["MemoryFarm", "MemoryPoolLock", "MemoryReadyMapStore", "open_farm"]


class MemoryReadyMapStore:
    """A :class:`~mwjobs.queues.farm.ReadyMapStore` in a dict (replaced whole, under a lock)."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}
        self._lock = threading.Lock()

    def replace(self, fields: Mapping[str, str]) -> None:
        with self._lock:
            self._fields = dict(fields)

    def fetch(self) -> dict[str, str]:
        with self._lock:
            return dict(self._fields)


class MemoryPoolLock:
    """A :class:`~mwjobs.queues.farm.PoolLock` with the Redis lock's rules: a slot held
    longer than ``ttl`` seconds may be taken over."""

    def __init__(self, slots: int, ttl: float) -> None:
        if slots < 1:
            raise ValueError("a pool lock needs at least one slot")
        self.ttl = ttl
        self._held: list[float | None] = [None] * slots  # slot -> when it was taken
        self._lock = threading.Lock()

    def acquire(self, now: float) -> int | None:
        with self._lock:
            for slot, since in enumerate(self._held):
                if since is None or now - since > self.ttl:
                    self._held[slot] = now
                    return slot
        return None

    def refresh(self, slot: int, now: float) -> None:
        with self._lock:
            self._held[slot] = now

    def release(self, slot: int) -> bool:
        with self._lock:
            held = self._held[slot] is not None
            self._held[slot] = None
        return held


class MemoryFarm(QueueFarm):
    """Memory partitions; one map and one lock per farm object."""

    def __init__(self, partitions: Sequence[BackendLocation], *, clock: Clock) -> None:
        super().__init__({p.url: open_backend(p, clock=clock) for p in partitions})
        self._store = MemoryReadyMapStore()
        self._lock: MemoryPoolLock | None = None

    def ready_map_store(self) -> MemoryReadyMapStore:
        return self._store

    def pool_lock(self, *, ttl: float) -> MemoryPoolLock:
        """The farm's one lock (made by the first call, with its ``ttl``): every chron on
        this farm shares it."""
        if self._lock is None:
            self._lock = MemoryPoolLock(len(self.partitions), ttl)
        return self._lock


def open_farm(
    partitions: Sequence[BackendLocation],
    aggregators: Sequence[BackendLocation],
    *,
    clock: Clock,
    on_error: ErrorSink | None,
) -> MemoryFarm:
    """A :class:`MemoryFarm` (``aggregators`` and ``on_error`` are not needed: nothing
    here can be unreachable)."""
    return MemoryFarm(partitions, clock=clock)
