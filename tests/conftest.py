"""Session fixtures: real servers started privately for this test run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.servers import RedisServer, StatsdListener

# `clock` and a Redis `backend` for the queue and chron tests; a module that needs another
# kind of backend (memory) defines its own fixture of that name, which wins.
pytest_plugins = ["tests.queues.redis_fixtures"]

# Real MediaWiki 1.43 data, kept in the repository so that a clone alone passes its tests.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mediawiki-1.43"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for the whole session (never the machine's 6379)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on the private server, with an empty database for each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def statsd_listener() -> Iterator[StatsdListener]:
    """A statsd stand-in on a private UDP port."""
    listener = StatsdListener()
    yield listener
    listener.close()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``tests/fixtures/mediawiki-1.43``: real MediaWiki 1.43 data."""
    if not FIXTURES.is_dir():
        raise RuntimeError(f"missing fixtures at {FIXTURES}")
    return FIXTURES
