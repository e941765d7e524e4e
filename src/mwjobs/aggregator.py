"""The ready-queue map: which (job type, domain) queues have jobs ready to run.

The chron writes it once per pass; the runner reads it to choose a queue. Stored form (the PHP
jobchron's, so PHP and Python services can share it): a hash whose fields are
``rawurlencode(type)/rawurlencode(domain)`` and whose values are the UNIX time at which a
chron pass last saw the queue with ready jobs, plus the field ``_epoch`` = the time of that
pass (its presence proves a chron is running). A queue with no ready jobs is simply absent.

This module is storage-agnostic: a :class:`~mwjobs.queues.farm.ReadyMapStore` moves the raw
fields (each backend's farm has one); :class:`ReadyQueueMap` encodes, decodes
and caches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from mwjobs.codec import AGGREGATOR_EPOCH_FIELD, aggregator_field, parse_aggregator_field
from mwjobs.errors import MwJobsError, RecordError
from mwjobs.queues.farm import ReadyMapStore

__all__ = [
    "ReadyMap",
    "ReadyMapStore",
    "ReadyQueueMap",
    "decode_ready_map",
    "encode_ready_map",
]

log = logging.getLogger(__name__)

# (job type, domain) -> UNIX time a chron pass last saw the queue with ready jobs.
ReadyMap = dict[tuple[str, str], int]


def encode_ready_map(ready: Mapping[tuple[str, str], int], epoch: int) -> dict[str, str]:
    """The stored fields of ``ready``, with ``_epoch`` always present."""
    fields = {AGGREGATOR_EPOCH_FIELD: str(epoch)}
    for (job_type, domain), since in ready.items():
        fields[aggregator_field(job_type, domain)] = str(since)
    return fields


def decode_ready_map(fields: Mapping[str, str]) -> tuple[ReadyMap, int | None]:
    """The map and its ``_epoch`` (None if missing) from stored fields. ``_epoch`` is not a
    queue; fields or values that do not parse are logged and skipped (another writer's junk
    must not stop the runner)."""
    ready: ReadyMap = {}
    epoch: int | None = None
    for field, value in fields.items():
        try:
            since = int(value)
        except ValueError:
            log.warning("ready-queue map: skipping %r, its value %r is not a time", field, value)
            continue
        if field == AGGREGATOR_EPOCH_FIELD:
            epoch = since
            continue
        try:
            ready[parse_aggregator_field(field)] = since
        except RecordError as exc:
            log.warning("ready-queue map: skipping a bad field: %s", exc)
    return ready, epoch


class ReadyQueueMap:
    """Read and write the map through a store, with the runner's short read cache.

    ``cache_ttl`` is how long a read result is reused (the PHP runner's 1 s); ``monotonic``
    times it, so tests can move it.
    """

    def __init__(
        self,
        store: ReadyMapStore,
        *,
        cache_ttl: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_ttl = cache_ttl
        self._monotonic = monotonic
        self._cached: ReadyMap = {}
        self._epoch: int | None = None
        self._fetched_at: float | None = None

    def write(self, ready: Mapping[tuple[str, str], int], now: int) -> None:
        """Replace the stored map with ``ready`` (queues absent from it are dropped) and
        ``_epoch = now``. Raises the store's error when it cannot be written."""
        self.store.replace(encode_ready_map(ready, now))

    def read(self) -> ReadyMap:
        """The current map, from the cache if it is younger than ``cache_ttl``. When the
        store fails, the previous map (maybe empty) is returned and the failure logged, as
        the PHP runner does; the failure is cached too, so a dead store is not hammered."""
        now = self._monotonic()
        if self._fetched_at is not None and now - self._fetched_at < self.cache_ttl:
            return dict(self._cached)
        self._fetched_at = now
        try:
            fields = self.store.fetch()
        except MwJobsError as exc:
            log.error("Could not read the ready-queue map: %s", exc)
            return dict(self._cached)
        self._cached, self._epoch = decode_ready_map(fields)
        return dict(self._cached)

    @property
    def epoch(self) -> int | None:
        """The ``_epoch`` of the last successful read: when a chron last wrote the map
        (None: never read, or no chron has written it)."""
        return self._epoch

    def invalidate(self) -> None:
        """Forget the cached map so the next read fetches it."""
        self._fetched_at = None
