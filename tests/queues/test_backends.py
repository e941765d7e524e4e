"""Picking a backend by URL (open_backend, location_of) and the services' storage contract
(open_farm) on the memory and Redis backends."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mwjobs.aggregator import ReadyQueueMap
from mwjobs.chron import Chron
from mwjobs.codec import queue_key
from mwjobs.config import parse_config
from mwjobs.errors import ConfigError, QueueError, QueueUnavailable
from mwjobs.model.data import JobSpec
from mwjobs.queues import backends
from mwjobs.queues.backends import BackendLocation, location_of, open_backend
from mwjobs.queues.farm import open_farm
from mwjobs.queues.memory import MemoryBackend
from mwjobs.queues.redis import RedisBackend
from tests.chron.conftest import Recorder
from tests.queues.clock import FakeClock
from tests.servers import RedisServer, free_port

SRC = Path(__file__).resolve().parents[2] / "src" / "mwjobs"


def test_a_url_picks_its_backend() -> None:
    assert isinstance(open_backend("redis://127.0.0.1:1/0"), RedisBackend)
    assert isinstance(open_backend("unix:///run/redis.sock?db=2"), RedisBackend)
    assert isinstance(open_backend("memory://picks"), MemoryBackend)
    # A bare server string is a Redis server, as MediaWiki's redisServer.
    backend = open_backend("127.0.0.1:6380")
    assert isinstance(backend, RedisBackend) and backend.endpoint.port == 6380


def test_memory_urls_name_one_backend_per_process() -> None:
    assert open_backend("memory://shared") is open_backend("memory://shared")
    assert open_backend("memory://shared") is not open_backend("memory://other")


def test_an_unknown_scheme_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"'ftp://x' is not a queue backend URL.*redis://"):
        open_backend("ftp://x")


def test_a_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = backends._Entry("no_such_driver_module", "no_such_driver_module", "sql")
    monkeypatch.setitem(backends.BACKENDS, "fakesql", entry)
    with pytest.raises(ConfigError, match=r"pip install 'mwjobs\[sql\]'"):
        open_backend("fakesql://db")


def test_redis_locations_keep_the_password_out_of_the_url() -> None:
    where = location_of("redis://bob:s3cret@127.0.0.1:6390/2")
    assert where == BackendLocation("redis://bob@127.0.0.1:6390/2", "s3cret")
    assert "s3cret" not in repr(where) and "s3cret" not in where.display
    backend = open_backend(where)
    assert isinstance(backend, RedisBackend)
    assert (backend.endpoint.password, backend.endpoint.db) == ("s3cret", 2)
    assert location_of("[::1]:7000").url == "redis://[::1]:7000/0"


def test_a_farm_of_mixed_backends_is_refused() -> None:
    with pytest.raises(ConfigError, match="different backends"):
        open_farm([location_of("memory://a"), location_of("redis://127.0.0.1:1/0")])


def test_a_chron_runs_on_a_memory_farm() -> None:
    clock = FakeClock()
    farm = open_farm([location_of("memory://farm-a"), location_of("memory://farm-b")], clock=clock)
    queue = farm.partitions["memory://farm-b"].queue("enwiki", "null")
    later = JobSpec.create("null", {"n": 2}, release_at=clock() + 30)
    queue.push([JobSpec.create("null", {"n": 1}), later])
    config = parse_config(
        '{"groups": {"g": {"runners": 1}}, "redis": {"aggregators": ["h"], "queues": ["h"]},'
        ' "dispatcher": "php runJobs.php --wiki=%(db)x"}',
        "test",
    )
    store = farm.ready_map_store()
    chron = Chron(config, farm.partitions, ReadyQueueMap(store), farm.pool_lock(ttl=300),
                  Recorder(), clock=clock, host="h")  # fmt: skip
    clock.advance(31)
    result = chron.run_pass()
    assert (result.claimed, result.ok, result.undelayed) == (True, True, 1)
    assert queue.sizes().unclaimed == 2
    assert ReadyQueueMap(store).read() == {("null", "enwiki"): int(clock())}
    # The lock has one slot per partition; both taken, a third chron is raced out.
    lock = farm.pool_lock(ttl=300)
    assert (lock.acquire(clock()), lock.acquire(clock()), lock.acquire(clock())) == (0, 1, None)


def test_a_redis_farm_maintains_each_partition(redis_server: RedisServer) -> None:
    farm = open_farm([location_of(redis_server.url)], [location_of(redis_server.url)])
    try:
        (name,) = farm.partitions
        assert name == RedisBackend(redis_server.url).endpoint.display
        listener = farm.push_listener(name)
        assert listener is not None and listener.name == name
        listener.close()
    finally:
        farm.close()


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path",
    [SRC / "chron.py", *sorted((SRC / "runner").rglob("*.py"))],
    ids=lambda path: str(path.relative_to(SRC)),
)
def test_the_services_name_no_backend(path: Path) -> None:
    """The runner and the chron use the contracts of mwjobs.queues (open_farm,
    open_backend), never a backend's package or its driver."""
    for module in _imported_modules(path):
        assert module != "redis" and not module.startswith("redis.")
        assert not module.startswith("mwjobs.queues.redis")
        assert module not in ("mwjobs.queues.memory", "mwjobs.queues.memory_farm")


def test_an_unreachable_server_is_queue_unavailable(redis_server: RedisServer) -> None:
    down = open_backend(f"redis://127.0.0.1:{free_port()}/0").queue("enwiki", "null")
    with pytest.raises(QueueUnavailable, match="pop from"):
        down.pop()
    # A server that answers with an error is a QueueError, not QueueUnavailable.
    backend = open_backend(redis_server.url)
    queue = backend.queue("enwiki", "null")
    assert isinstance(backend, RedisBackend)
    backend.client.set(queue_key("enwiki", "null", "l-unclaimed"), "not a list")
    with pytest.raises(QueueError) as caught:
        queue.pop()
    assert not isinstance(caught.value, QueueUnavailable)
    backend.client.flushall()
    backend.close()


def test_a_chron_built_from_mwjobs_queues_alone_runs_on_memory() -> None:
    from mwjobs.chron import build_chron  # noqa: PLC0415

    config = parse_config(
        '{"groups": {"g": {"runners": 1}}, "dispatcher": "php runJobs.php --wiki=%(db)x",'
        ' "mwjobs": {"queues": {"partitions": ["memory://from-config"]}}}',
        "test",
    )
    assert config.redis is None
    clock = FakeClock()
    chron = build_chron(config, Recorder(), clock=clock, host="h")
    queue = open_backend("memory://from-config").queue("enwiki", "null")
    queue.push([JobSpec.create("null", {"n": 1})])
    result = chron.run_pass()
    assert (result.claimed, result.ok) == (True, True)
    assert dict(result.ready) == {("null", "enwiki"): int(clock())}
    chron.close()
