"""Several queue partitions: a second private redis-server next to the session's. A partition
that is down is skipped, counted and retried on the next pass; the others are served."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from mwjobs.model.data import JobSpec
from mwjobs.queues.redis import RedisBackend
from tests.chron.conftest import HOST, T0, MakeChron, make_config, ready_map, recorder
from tests.queues.clock import FakeClock
from tests.servers import RedisServer


@pytest.fixture
def second_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-b"))
    server.start()
    yield server
    server.stop()


def stale_job(url: str, clock: FakeClock, job_type: str) -> None:
    """One job of ``job_type`` on ``url``, claimed at T0 (stale from T0 + 3600)."""
    backend = RedisBackend(url, clock=clock)
    try:
        queue = backend.queue("enwiki", job_type)
        queue.push([JobSpec.create(job_type, {}, request_id="r")])
        assert queue.pop() is not None
    finally:
        backend.close()


def test_every_partition_is_served_and_lock_slots_match_their_number(
    make_chron: MakeChron, redis_server: RedisServer, second_server: RedisServer,
    redis_client: redis.Redis, clock: FakeClock,
) -> None:  # fmt: skip
    stale_job(redis_server.url, clock, "onA")
    stale_job(second_server.url, clock, "onB")
    config = make_config([redis_server.address, second_server.address])
    first, second = make_chron(config), make_chron(config)
    assert first.lock.acquire(T0 + 3600) == 0
    # Two queue servers, two slots: a second chron runs beside the first (PHP's rule)...
    result = second.run_pass(T0 + 3600)
    assert (result.claimed, result.ok, result.released) == (True, True, 2)
    # ...and writes the map of both partitions to the (first) aggregator.
    expected = {("onA", "enwiki"): T0 + 3600, ("onB", "enwiki"): T0 + 3600}
    assert ready_map(redis_client) == (expected, T0 + 3600)
    assert second.lock.release(0) is False  # not its slot


def test_down_partition_is_skipped_counted_and_retried(
    make_chron: MakeChron, redis_server: RedisServer, second_server: RedisServer,
    clock: FakeClock, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    redis_client = redis.Redis.from_url(redis_server.url)  # emptied by make_chron's fixture
    stale_job(redis_server.url, clock, "onA")
    stale_job(second_server.url, clock, "onB")
    config = make_config([second_server.address, redis_server.address], [redis_server.address])
    chron = make_chron(config)
    second_server.kill()
    with caplog.at_level(logging.ERROR):
        result = chron.run_pass(T0 + 3600)
    down = second_server.address
    assert result.failed_partitions == (down,)
    assert (result.claimed, result.ok, result.released) == (True, False, 1)
    assert ready_map(redis_client) == ({("onA", "enwiki"): T0 + 3600}, T0 + 3600)
    metrics = recorder(chron)
    assert metrics.total(f"periodictasks.partition-failed.{down}") == 1
    assert metrics.total(f"periodictasks.failed.{HOST}") == 1
    assert metrics.total(f"redis-error.{HOST}") == 1
    assert metrics.total("job-recycle.onA") == 1
    assert f"Queue partition {down} failed" in caplog.text
    assert "Failed to do periodic tasks for some queues." in caplog.text
    assert redis_client.keys("RedisJobChronService*") == []

    # The server comes back (empty: it had no persistence): the next pass uses it again.
    second_server.start()
    stale_job(second_server.url, clock, "onB")
    again = chron.run_pass(T0 + 7200)
    assert (again.ok, again.failed_partitions, again.released) == (True, (), 1)
    assert ("onB", "enwiki") in again.ready
    redis_client.close()
