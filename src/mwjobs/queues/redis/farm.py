"""The services' storage on Redis (:class:`~mwjobs.queues.farm.QueueFarm`), as the PHP
jobrunner service lays it out: one backend per ``redis.queues`` server, and on the first
reachable ``redis.aggregators`` server the ready-queue map and the chron pool lock."""

from __future__ import annotations

from collections.abc import Sequence

from mwjobs.errors import ConfigError
from mwjobs.queues.backends import BackendLocation
from mwjobs.queues.base import Clock
from mwjobs.queues.farm import ErrorSink, QueueFarm
from mwjobs.queues.redis.backend import RedisBackend
from mwjobs.queues.redis.endpoint import RedisEndpoint, parse_redis_endpoint
from mwjobs.queues.redis.failover import RedisFailover
from mwjobs.queues.redis.lock import RedisPoolLock
from mwjobs.queues.redis.ready_map import RedisReadyMapStore
from mwjobs.queues.redis.wake import PushListener

__all__ = ["RedisFarm", "open_farm"]


class RedisFarm(QueueFarm):
    """Queue servers plus aggregator servers (with fail-over between them)."""

    def __init__(
        self,
        queues: Sequence[RedisEndpoint],
        aggregators: Sequence[RedisEndpoint],
        *,
        clock: Clock,
        on_error: ErrorSink | None = None,
    ) -> None:
        super().__init__({e.display: RedisBackend(e, clock=clock) for e in queues})
        self.endpoints = {e.display: e for e in queues}
        self.failover = RedisFailover(aggregators, on_error=on_error)

    def ready_map_store(self) -> RedisReadyMapStore:
        return RedisReadyMapStore(self.failover)

    def pool_lock(self, *, ttl: float) -> RedisPoolLock:
        return RedisPoolLock(self.failover, slots=len(self.partitions), ttl=ttl)

    def push_listener(self, partition: str) -> PushListener:
        return PushListener(self.endpoints[partition])

    def close(self) -> None:
        super().close()
        self.failover.close()


def open_farm(
    partitions: Sequence[BackendLocation],
    aggregators: Sequence[BackendLocation],
    *,
    clock: Clock,
    on_error: ErrorSink | None,
) -> RedisFarm:
    """A :class:`RedisFarm`; every partition and aggregator must be a Redis location."""
    if not aggregators:
        raise ConfigError("Redis queues need at least one aggregator server (redis.aggregators)")
    return RedisFarm(
        [_endpoint(location) for location in partitions],
        [_endpoint(location) for location in aggregators],
        clock=clock,
        on_error=on_error,
    )


def _endpoint(location: BackendLocation) -> RedisEndpoint:
    return parse_redis_endpoint(location.url, password=location.password)
