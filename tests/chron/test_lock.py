"""The chron pool lock: the PHP jobchron's keys and values, staleness, GETSET compare,
refresh, and a release that never frees another chron's slot."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from mwjobs.queues.redis.endpoint import parse_redis_endpoint
from mwjobs.queues.redis.failover import RedisFailover
from mwjobs.queues.redis.lock import RedisPoolLock, php_float_string
from tests.chron.conftest import T0
from tests.servers import RedisServer

KEY = "RedisJobChronService::executePeriodicTasks:lock:{}"


@pytest.fixture
def failover(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[RedisFailover]:
    failover = RedisFailover([parse_redis_endpoint(redis_server.address)])
    yield failover
    failover.close()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1700000000.0, "1700000000"),
        (1700000000.5, "1700000000.5"),
        (1700000000.123456, "1700000000.1235"),
        (1795444050.25, "1795444050.25"),
    ],
)
def test_values_are_written_as_php_prints_microtime(value: float, text: str) -> None:
    assert php_float_string(value) == text


def test_slots_fill_in_order_and_hold_the_time(
    failover: RedisFailover, redis_client: redis.Redis
) -> None:
    lock = RedisPoolLock(failover, slots=2, ttl=300)
    assert lock.acquire(T0 + 0.5) == 0
    assert lock.acquire(T0 + 1.5) == 1
    assert lock.acquire(T0 + 2) is None
    assert redis_client.get(KEY.format(0)) == b"1700000000.5"
    assert redis_client.get(KEY.format(1)) == b"1700000001.5"
    assert redis_client.ttl(KEY.format(0)) == -1  # no TTL: staleness is judged by the value


def test_a_slot_goes_stale_after_the_ttl(failover: RedisFailover) -> None:
    holder, other = RedisPoolLock(failover, slots=1), RedisPoolLock(failover, slots=1)
    assert holder.acquire(T0) == 0
    assert other.acquire(T0 + 300) is None  # exactly ttl old is not yet stale (PHP's "<")
    assert other.acquire(T0 + 300.001) == 0
    assert holder.release(0) is False  # taken over: the release leaves it to the new owner
    assert other.release(0) is True


def test_refresh_keeps_a_long_pass_alive(
    failover: RedisFailover, redis_client: redis.Redis
) -> None:
    holder, other = RedisPoolLock(failover, slots=1), RedisPoolLock(failover, slots=1)
    holder.acquire(T0)
    holder.refresh(0, T0 + 250)
    assert redis_client.get(KEY.format(0)) == b"1700000250"
    assert other.acquire(T0 + 400) is None
    assert holder.release(0) is True
    assert not redis_client.exists(KEY.format(0))


def test_a_changed_value_between_get_and_getset_loses_the_race(
    failover: RedisFailover, redis_client: redis.Redis
) -> None:
    class Racing(RedisPoolLock):
        def _getset(self, key: str, token: bytes) -> bytes | None:
            redis_client.set(key, "1700000299")  # another chron's GETSET got there first
            return super()._getset(key, token)

    assert Racing(failover, slots=1).acquire(T0 + 1000) is None


def test_junk_value_counts_as_stale(
    failover: RedisFailover, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    redis_client.set(KEY.format(0), "garbage")
    with caplog.at_level(logging.WARNING):
        assert RedisPoolLock(failover, slots=1).acquire(T0) == 0
    assert "not a time" in caplog.text


def test_release_of_an_unheld_slot_does_nothing(
    failover: RedisFailover, redis_client: redis.Redis
) -> None:
    redis_client.set(KEY.format(0), "1700000000")
    assert RedisPoolLock(failover, slots=1).release(0) is False
    assert redis_client.exists(KEY.format(0))


def test_needs_a_slot(failover: RedisFailover) -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        RedisPoolLock(failover, slots=0)
