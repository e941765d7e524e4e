"""The ready-queue map (encode/decode, Redis store, read cache) and the aggregator fail-over."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from mwjobs.aggregator import ReadyQueueMap, decode_ready_map, encode_ready_map
from mwjobs.errors import QueueError
from mwjobs.queues.redis.endpoint import parse_redis_endpoint
from mwjobs.queues.redis.failover import RedisFailover
from mwjobs.queues.redis.ready_map import RedisReadyMapStore
from tests.chron.conftest import T0
from tests.queues.clock import FakeClock
from tests.servers import RedisServer, free_port

KEY = "jobqueue:aggregator:h-ready-queues:v2"


def test_encode_always_has_the_epoch_and_rawurlencoded_fields() -> None:
    assert encode_ready_map({}, T0) == {"_epoch": str(T0)}
    fields = encode_ready_map({("foo/bar", "my?hwiki"): 5, ("null", "enwiki"): 6}, T0)
    assert fields == {"_epoch": str(T0), "foo%2Fbar/my%3Fhwiki": "5", "null/enwiki": "6"}


def test_decode_skips_the_epoch_and_what_does_not_parse(caplog: pytest.LogCaptureFixture) -> None:
    fields = {
        "_epoch": "100",
        "null/enwiki": "90",
        "foo%2Fbar/a%2Fb": "91",  # decoded at the first raw "/"
        "noslash": "92",
        "/nodomain": "93",
        "null/badvalue": "yesterday",
    }
    with caplog.at_level(logging.WARNING):
        ready, epoch = decode_ready_map(fields)
    assert epoch == 100
    assert ready == {("null", "enwiki"): 90, ("foo/bar", "a/b"): 91}
    assert caplog.text.count("skipping") == 3


def test_decode_without_epoch() -> None:
    assert decode_ready_map({"null/enwiki": "1"}) == ({("null", "enwiki"): 1}, None)


@pytest.fixture
def failover(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[RedisFailover]:
    failover = RedisFailover([parse_redis_endpoint(redis_server.address)])
    yield failover
    failover.close()


def test_write_replaces_the_whole_map_through_the_temp_key(
    failover: RedisFailover, redis_client: redis.Redis
) -> None:
    store = RedisReadyMapStore(failover)
    aggregator = ReadyQueueMap(store)
    redis_client.hset(f"{KEY}:temp", "left/over", "1")  # a PHP chron's half-done write
    aggregator.write({("a", "w1"): T0, ("b", "w2"): T0 - 5}, T0)
    assert redis_client.hgetall(KEY) == {
        b"_epoch": str(T0).encode(),
        b"a/w1": str(T0).encode(),
        b"b/w2": str(T0 - 5).encode(),
    }
    assert not redis_client.exists(f"{KEY}:temp")
    aggregator.write({}, T0 + 1)
    assert redis_client.hgetall(KEY) == {b"_epoch": str(T0 + 1).encode()}


def test_read_is_cached_for_the_ttl(failover: RedisFailover, redis_client: redis.Redis) -> None:
    ticks = FakeClock(0.0)
    aggregator = ReadyQueueMap(RedisReadyMapStore(failover), cache_ttl=1.0, monotonic=ticks)
    assert aggregator.read() == {} and aggregator.epoch is None
    aggregator.write({("a", "w"): T0}, T0)
    assert aggregator.read() == {}  # still the cached (empty) map
    ticks.advance(1.0)
    assert aggregator.read() == {("a", "w"): T0}
    assert aggregator.epoch == T0
    aggregator.write({}, T0 + 1)
    aggregator.invalidate()
    assert aggregator.read() == {}
    assert aggregator.epoch == T0 + 1


def test_read_failure_returns_the_previous_map(
    failover: RedisFailover, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = FakeClock(0.0)
    aggregator = ReadyQueueMap(RedisReadyMapStore(failover), cache_ttl=1.0, monotonic=ticks)
    aggregator.write({("a", "w"): T0}, T0)
    assert aggregator.read() == {("a", "w"): T0}
    redis_client.set(KEY, "not a hash")  # WRONGTYPE on the only server
    ticks.advance(2)
    with caplog.at_level(logging.ERROR):
        assert aggregator.read() == {("a", "w"): T0}
    assert "Could not read the ready-queue map" in caplog.text


def test_failover_uses_the_first_reachable_server_and_skips_a_down_one_for_30s(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    dead = parse_redis_endpoint(f"127.0.0.1:{free_port()}")
    live = parse_redis_endpoint(redis_server.address)
    ticks = FakeClock(1000.0)
    errors: list[str] = []
    failover = RedisFailover([dead, live], monotonic=ticks, on_error=errors.append)
    try:
        store = RedisReadyMapStore(failover)
        store.replace({"_epoch": "1"})
        assert errors == [dead.display]
        assert store.fetch() == {"_epoch": "1"}
        ticks.advance(29.9)
        store.fetch()
        assert errors == [dead.display]  # skipped while marked down
        ticks.advance(0.2)
        store.fetch()
        assert errors == [dead.display, dead.display]  # tried again after 30 s
    finally:
        failover.close()


def test_failover_prefers_the_first_server_when_both_are_up(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = RedisServer(tmp_path_factory.mktemp("redis-aggr"))
    other.start()
    servers = (other.address, redis_server.address)
    failover = RedisFailover([parse_redis_endpoint(address) for address in servers])
    try:
        RedisReadyMapStore(failover).replace({"_epoch": "7"})
        assert not redis_client.exists(KEY)  # fail-over, not replication (as in PHP)
        other_client = redis.Redis.from_url(other.url)
        assert other_client.hgetall(KEY) == {b"_epoch": b"7"}
        other_client.close()
    finally:
        failover.close()
        other.stop()


def test_all_servers_down_raises_naming_each_and_still_retries_them() -> None:
    ends = [parse_redis_endpoint(f"127.0.0.1:{free_port()}") for _ in range(2)]
    errors: list[str] = []
    failover = RedisFailover(ends, on_error=errors.append)
    store = RedisReadyMapStore(failover)
    with pytest.raises(QueueError) as caught:
        store.fetch()
    assert all(end.display in str(caught.value) for end in ends)
    with pytest.raises(QueueError):
        store.fetch()  # every server is marked down: all are tried rather than none
    assert len(errors) == 4
    failover.close()


def test_failover_needs_a_server() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RedisFailover([])
