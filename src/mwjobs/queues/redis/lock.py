"""The chron pool lock on the aggregator servers, exactly as the PHP jobchron keeps it
(``RedisJobChronService::executePeriodicTasks``), so PHP and Python chrons can run side by
side during a migration.

Slot ``i`` (0 ≤ i < slots, slots = number of queue servers) is the STRING key
``RedisJobChronService::executePeriodicTasks:lock:{i}`` holding the holder's float UNIX time
(PHP's ``microtime(true)`` as PHP prints it). A value older than ``ttl`` seconds is stale.
Taking a slot: ``GET``; if missing or stale, ``GETSET`` the current time, and the slot is ours
if the old value came back unchanged (a racy compare, "good enough" by the PHP design).

Differences from PHP (docs/compatibility.md): release deletes the key only while it still
holds our value (PHP deleted blindly, so a chron whose lock had gone stale could delete its
successor's); a value that is not a number counts as stale instead of blocking the slot.
"""

from __future__ import annotations

import logging

import redis

from mwjobs.codec import chron_lock_key
from mwjobs.queues.redis.failover import RedisFailover
from mwjobs.queues.redis.replies import optional_bytes

__all__ = ["RedisPoolLock", "php_float_string"]

log = logging.getLogger(__name__)

POOL_LOCK_TTL = 300  # seconds; PHP's hard-coded value (config: mwjobs.timing.pool_lock_ttl)


def php_float_string(value: float) -> str:
    """A float as PHP's ``(string)`` prints it (``precision`` = 14 significant digits, no
    trailing zeros): ``1700000000.1235``, ``1700000000``."""
    return format(value, ".14G")


class RedisPoolLock:
    """A :class:`mwjobs.queues.farm.PoolLock` on the aggregator servers (through ``failover``)."""

    def __init__(self, failover: RedisFailover, *, slots: int, ttl: float = POOL_LOCK_TTL) -> None:
        if slots < 1:
            raise ValueError("a pool lock needs at least one slot")
        self.failover = failover
        self.slots = slots
        self.ttl = ttl
        self._held: dict[int, bytes] = {}  # slot -> the value we last wrote there

    def acquire(self, now: float) -> int | None:
        """Take the first free or stale slot and return its number; None when every slot is
        held by a live chron. Raises QueueError when no aggregator server answers."""
        for slot in range(self.slots):
            key = chron_lock_key(slot)
            old = self._get(key)
            if old is not None and not self._stale(key, old, now):
                continue
            token = php_float_string(now).encode()
            if self._getset(key, token) == old:
                self._held[slot] = token
                return slot
        return None

    def _get(self, key: str) -> bytes | None:
        def get(client: redis.Redis) -> bytes | None:
            value = optional_bytes(client.get(key))
            return value

        return self.failover.run(f"GET {key}", get)

    def _getset(self, key: str, token: bytes) -> bytes | None:
        def getset(client: redis.Redis) -> bytes | None:
            value = optional_bytes(client.getset(key, token))
            return value

        return self.failover.run(f"GETSET {key}", getset)

    def _stale(self, key: str, value: bytes, now: float) -> bool:
        try:
            return float(value) < now - self.ttl
        except ValueError:
            log.warning("chron lock %s holds %r, not a time; taking it over", key, value)
            return True

    def refresh(self, slot: int, now: float) -> None:
        """Renew the slot's time so a long pass does not go stale (PHP: every 100 queues)."""
        token = php_float_string(now).encode()
        key = chron_lock_key(slot)
        self.failover.run(f"SET {key}", lambda c: c.set(key, token))
        self._held[slot] = token

    def release(self, slot: int) -> bool:
        """Free the slot if it still holds our value; False if another chron took it over
        meanwhile (then it is theirs and stays). Raises QueueError when no server answers."""
        token = self._held.pop(slot, None)
        if token is None:
            return False
        key = chron_lock_key(slot)
        deleted: bool = self.failover.run(f"DEL {key}", lambda c: _delete_if(c, key, token))
        return deleted


def _delete_if(client: redis.Redis, key: str, expected: bytes) -> bool:
    """DEL ``key`` only while it holds ``expected`` (WATCH/MULTI: no script needed)."""
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(key)
            if pipe.get(key) != expected:
                pipe.unwatch()
                return False
            pipe.multi()
            pipe.delete(key)
            pipe.execute()
        except redis.WatchError:  # changed between GET and EXEC: someone else's now
            return False
    return True
