"""The ready-queue map on the aggregator Redis servers (jobrunner ``src/RedisJobChronService.php``).

Keys: ``jobqueue:aggregator:h-ready-queues:v2`` (HASH, read by runners) and its staging copy
``…:v2:temp``, as the PHP jobchron writes them. A write is one MULTI/EXEC on one server:
``DEL temp``, ``HSET temp …``, ``RENAME temp → key``. The PHP chron sent HMSET and RENAME as
two fail-over commands, which could land on different servers during a fail-over
(docs/compatibility.md, "The ready map is written atomically on one server") and merged into
whatever an earlier failed write left in the temp hash.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis
from redis.typing import EncodableT, FieldT

from mwjobs.codec import AGGREGATOR_READY_KEY, AGGREGATOR_READY_TEMP_KEY
from mwjobs.queues.redis.failover import RedisFailover
from mwjobs.queues.redis.replies import byte_map

__all__ = ["RedisReadyMapStore"]


class RedisReadyMapStore:
    """A :class:`mwjobs.queues.farm.ReadyMapStore` (structurally: backends never import the
    layer above them) on the first reachable aggregator server."""

    def __init__(self, failover: RedisFailover) -> None:
        self.failover = failover

    def replace(self, fields: Mapping[str, str]) -> None:
        if not fields:
            raise ValueError("the ready-queue map always has at least the _epoch field")

        mapping: dict[FieldT, EncodableT] = {field: value for field, value in fields.items()}

        def write(client: redis.Redis) -> None:
            with client.pipeline(transaction=True) as pipe:
                pipe.delete(AGGREGATOR_READY_TEMP_KEY)
                pipe.hset(AGGREGATOR_READY_TEMP_KEY, mapping=mapping)
                pipe.rename(AGGREGATOR_READY_TEMP_KEY, AGGREGATOR_READY_KEY)
                pipe.execute()

        self.failover.run(f"writing {AGGREGATOR_READY_KEY}", write)

    def fetch(self) -> dict[str, str]:
        def read(client: redis.Redis) -> dict[bytes, bytes]:
            raw = byte_map(client.hgetall(AGGREGATOR_READY_KEY))
            return raw

        raw = self.failover.run(f"reading {AGGREGATOR_READY_KEY}", read)
        # Field names are rawurlencoded ASCII; "replace" keeps a stray byte from raising.
        return {
            field.decode("utf-8", "replace"): value.decode("utf-8", "replace")
            for field, value in raw.items()
        }
