"""The Redis backend: MediaWiki's ``JobQueueRedis`` layout (see :mod:`.backend`).

One module per job: ``backend`` (the queues), ``keys`` (key names), ``scripts`` + ``lua/``
(one atomic script per operation), ``handoff`` (pushes hand jobs to blocked consumers),
``wake`` (push wake-ups), ``lock`` (the chron pool lock), ``failover`` (aggregator
fail-over), ``ready_map`` (the aggregator's ready-queue map), ``farm`` (what the services
need from storage, built from a config), ``connection``, ``endpoint`` and ``replies``.

Names are imported lazily, so ``mwjobs.queues.redis.endpoint`` (pure) can be read by the
config loader without importing redis-py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mwjobs.queues.redis.backend import GHOST_BUDGET, RedisBackend, RedisJobQueue
    from mwjobs.queues.redis.connection import make_client, redis_version
    from mwjobs.queues.redis.endpoint import RedisEndpoint, parse_redis_endpoint
    from mwjobs.queues.redis.keys import QueueKeys
    from mwjobs.queues.redis.wake import WAKE_CHANNEL, wake_channel

__all__ = [
    "GHOST_BUDGET",
    "WAKE_CHANNEL",
    "QueueKeys",
    "RedisBackend",
    "RedisEndpoint",
    "RedisJobQueue",
    "make_client",
    "parse_redis_endpoint",
    "redis_version",
    "wake_channel",
]

_HOMES = {
    "GHOST_BUDGET": "backend",
    "RedisBackend": "backend",
    "RedisJobQueue": "backend",
    "make_client": "connection",
    "redis_version": "connection",
    "RedisEndpoint": "endpoint",
    "parse_redis_endpoint": "endpoint",
    "QueueKeys": "keys",
    "WAKE_CHANNEL": "wake",
    "wake_channel": "wake",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
