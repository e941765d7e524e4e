"""Fixtures shared by the Redis tests of the queues and the chron (registered for all tests
by ``tests/conftest.py``): a fake clock, and a backend on the session's private
redis-server that reads it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from mwjobs.queues.redis import RedisBackend
from tests.queues.clock import START, FakeClock
from tests.servers import RedisServer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def backend(
    redis_server: RedisServer, redis_client: redis.Redis, clock: FakeClock
) -> Iterator[RedisBackend]:
    """The test's own handle on the queues (push and pop as MediaWiki would). Asking for
    redis_client flushes the private server first; the backend makes its own connection."""
    backend = RedisBackend(redis_server.url, clock=clock)
    yield backend
    backend.close()
