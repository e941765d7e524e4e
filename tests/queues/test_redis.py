"""The Redis backend against a private redis-server: the shared contract, MediaWiki's exact
data layout, the push/pop/chron scenario of the PHP scripts, and the fixes of
docs/compatibility.md (key rule, abandoned-only queues, ghost IDs)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
import redis

from mwjobs.codec import (
    QUEUES_WITH_JOBS_KEY,
    ROOT_JOB_TTL,
    PhpKey,
    PhpValue,
    make_domain,
    new_job_id,
    queue_key,
    root_job_key,
)
from mwjobs.errors import ConfigError, QueueError
from mwjobs.model.data import JobSpec, JobState
from mwjobs.queues.base import JobQueue, MaintenancePolicy, MaintenanceResult
from mwjobs.queues.redis import GHOST_BUDGET, RedisBackend, RedisJobQueue
from mwjobs.queues.redis.endpoint import RedisEndpoint, parse_redis_endpoint
from mwjobs.queues.redis.replies import byte_list, scored_list
from mwjobs.queues.redis.scripts import load_scripts
from tests.queues.clock import START, FakeClock
from tests.queues.contract import EventRecorder, PlantCorrupt, PlantGhost, QueueContract
from tests.servers import RedisServer, free_port

T0 = int(START)
POLICY = MaintenancePolicy(claim_ttl=3600, max_attempts=3)
DAY = 86400




@pytest.fixture
def events(backend: RedisBackend) -> EventRecorder:
    recorder = EventRecorder()
    backend._on_event = recorder
    return recorder


def plant(client: redis.Redis, queue: JobQueue, job_id: str, raw: bytes | None) -> None:
    """Put ``job_id`` at the back of ``queue`` as a push would, with ``raw`` as its record
    (None: no record at all, a "ghost")."""
    keys = (
        queue_key(queue.domain, queue.type, "h-data"),
        queue_key(queue.domain, queue.type, "l-unclaimed"),
    )
    if raw is not None:
        client.hset(keys[0], job_id, raw)
    client.lpush(keys[1], job_id)


class TestRedisContract(QueueContract):
    """Every behaviour of the shared contract, on Redis."""

    @pytest.fixture
    def backend(
        self, redis_server: RedisServer, redis_client: redis.Redis, clock: FakeClock
    ) -> Iterator[RedisBackend]:
        backend = RedisBackend(redis_server.url, clock=clock)
        yield backend
        backend.close()

    @pytest.fixture
    def plant_ghost(self, redis_client: redis.Redis) -> PlantGhost:
        def plant_ghost(queue: JobQueue) -> str:
            job_id = new_job_id()
            plant(redis_client, queue, job_id, None)
            return job_id

        return plant_ghost

    @pytest.fixture
    def plant_corrupt(self, redis_client: redis.Redis) -> PlantCorrupt:
        def plant_corrupt(queue: JobQueue, raw: bytes) -> str:
            job_id = new_job_id()
            plant(redis_client, queue, job_id, raw)
            return job_id

        return plant_corrupt


# -- the PHP scripts' scenario and exact data layout ------------------------------------------


def keys_of(client: redis.Redis) -> set[str]:
    raw = byte_list(client.keys("*"))
    return {key.decode() for key in raw}


def ids(client: redis.Redis, key: str) -> list[str]:
    raw = byte_list(client.lrange(key, 0, -1))
    return [job_id.decode() for job_id in raw]


def test_spec_redis_scenario_verbatim(
    redis_server: RedisServer, redis_client: redis.Redis, clock: FakeClock
) -> None:
    """As the PHP scripts do it: id1/id2 share a hash, id3 is plain, id4 is delayed."""
    backend = RedisBackend(redis_server.url, clock=clock, new_id=iter(
        ["id1", "id2", "id3", "id4"]).__next__)  # fmt: skip
    queue = backend.queue("enwiki", "null")
    now = T0
    same = JobSpec.create("null", {"k": "A"}, remove_duplicates=True, request_id="r")
    pushed = [
        queue.push([same]),
        queue.push([same]),
        queue.push([JobSpec.create("null", {"k": 3}, request_id="r")]),
        queue.push([JobSpec.create("null", {"k": 4}, release_at=now + 100, request_id="r")]),
    ]
    assert sum(pushed) == 3 and pushed[1] == 0  # id2 dropped
    unclaimed = "enwiki:jobqueue:null:l-unclaimed"
    assert ids(redis_client, unclaimed) == ["id3", "id1"]
    assert redis_client.zrange("enwiki:jobqueue:null:z-delayed", 0, -1) == [b"id4"]

    clock.now = now - 4000
    popped = queue.pop()
    assert popped is not None and popped.id == "id1"
    assert redis_client.hget("enwiki:jobqueue:null:h-data", "id1") is not None
    assert ids(redis_client, unclaimed) == ["id3"]

    assert queue.maintain(POLICY, now=now) == MaintenanceResult(1, 0, 0, 0, 2)
    assert ids(redis_client, unclaimed) == ["id3", "id1"]
    assert queue.maintain(POLICY, now=now + 200) == MaintenanceResult(0, 0, 0, 1, 3)
    assert ids(redis_client, unclaimed) == ["id4", "id3", "id1"]
    assert redis_client.smembers(QUEUES_WITH_JOBS_KEY) == {b'["null","enwiki"]'}


SPEC_BLOB = (
    b'a:8:{s:4:"type";s:4:"null";s:9:"namespace";i:-1;s:5:"title";s:0:"";s:6:"params";'
    b'a:4:{s:16:"removeDuplicates";b:1;s:9:"requestId";s:24:"8f0e2c1d6a7b4e3fa1b2c3d4";'
    b's:5:"lives";i:1;s:6:"usleep";i:0;}s:10:"rtimestamp";i:0;s:4:"uuid";'
    b's:32:"3f2a9c4e1b7d4c0e9a8b7c6d5e4f3a2b";s:4:"sha1";s:31:"j66c9icc7d92im135tkwc7xxefhkynh";'
    b's:9:"timestamp";i:1700000000;}'
)


def test_push_leaves_exactly_the_spec_state(
    redis_server: RedisServer, redis_client: redis.Redis, clock: FakeClock
) -> None:
    """MediaWiki's record of a NullJob with removeDuplicates (PHP 8.2), byte for byte."""
    job_id = "3f2a9c4e1b7d4c0e9a8b7c6d5e4f3a2b"
    backend = RedisBackend(redis_server.url, clock=clock, new_id=lambda: job_id)
    params: dict[PhpKey, PhpValue] = {
        "removeDuplicates": True,
        "requestId": "8f0e2c1d6a7b4e3fa1b2c3d4",
        "lives": 1,
        "usleep": 0,
    }
    spec = JobSpec("null", params, remove_duplicates=True, dedup_style="job")
    assert backend.queue("enwiki", "null").push([spec]) == 1

    sha = "j66c9icc7d92im135tkwc7xxefhkynh"
    prefix = "enwiki:jobqueue:null:"
    assert keys_of(redis_client) == {
        f"{prefix}l-unclaimed",
        f"{prefix}h-sha1ById",
        f"{prefix}h-idBySha1",
        f"{prefix}h-data",
        QUEUES_WITH_JOBS_KEY,
    }
    assert ids(redis_client, f"{prefix}l-unclaimed") == [job_id]
    assert redis_client.hgetall(f"{prefix}h-sha1ById") == {job_id.encode(): sha.encode()}
    assert redis_client.hgetall(f"{prefix}h-idBySha1") == {sha.encode(): job_id.encode()}
    assert redis_client.hgetall(f"{prefix}h-data") == {job_id.encode(): SPEC_BLOB}
    assert redis_client.smembers(QUEUES_WITH_JOBS_KEY) == {b'["null","enwiki"]'}
    assert all(redis_client.ttl(key) == -1 for key in keys_of(redis_client))


def test_in_batch_duplicate_replaces_the_earlier_item(
    redis_server: RedisServer, redis_client: redis.Redis, clock: FakeClock
) -> None:
    """doBatchPush keys the batch by hash: the later item (its ID too) takes the place."""
    backend = RedisBackend(redis_server.url, clock=clock, new_id=iter(
        ["a1", "b", "a2"]).__next__)  # fmt: skip
    queue = backend.queue("enwiki", "null")
    same = JobSpec.create("null", {"k": "A"}, remove_duplicates=True, request_id="r")
    specs = [same, JobSpec.create("null", {"k": "B"}, request_id="r"), same]
    assert queue.push(specs) == 2
    assert ids(redis_client, "enwiki:jobqueue:null:l-unclaimed") == ["b", "a2"]


def test_delayed_push_and_release_keep_the_hash(
    backend: RedisBackend, redis_client: redis.Redis, clock: FakeClock
) -> None:
    queue = backend.queue("enwiki", "null")
    spec = JobSpec.create("null", {"k": 1}, release_at=T0 + 60, remove_duplicates=True)
    assert queue.push([spec]) == 1
    delayed = scored_list(
        redis_client.zrange("enwiki:jobqueue:null:z-delayed", 0, -1, withscores=True)
    )
    [(member, score)] = delayed
    assert score == T0 + 60
    clock.advance(60)
    assert queue.maintain(POLICY).undelayed == 1
    assert queue.push([spec]) == 0  # still registered once ready
    assert redis_client.hget("enwiki:jobqueue:null:h-sha1ById", member) is not None


# -- MediaWiki's key rule, maintenance included -----------------------------------------------


def test_keys_use_the_rawurlencoded_wiki_id_on_every_side(
    backend: RedisBackend, redis_client: redis.Redis, clock: FakeClock
) -> None:
    """A DB named ``my-wiki`` has domain ``my?hwiki`` but wiki ID ``my-wiki``: push, pop and
    maintenance must all use MediaWiki's key (the PHP chron used the domain, and missed it)."""
    domain = make_domain("my-wiki", prefix="mw_")
    queue = backend.queue(domain, "foo/bar")
    queue.push([JobSpec.create("foo/bar", {"n": 1}, release_at=T0 + 10)])
    assert keys_of(redis_client) == {
        "my-wiki-mw_:jobqueue:foo%2Fbar:z-delayed",
        "my-wiki-mw_:jobqueue:foo%2Fbar:h-data",
        QUEUES_WITH_JOBS_KEY,
    }
    assert redis_client.smembers(QUEUES_WITH_JOBS_KEY) == {b'["foo\\/bar","my?hwiki-mw_"]'}
    assert backend.queues_with_jobs() == [("foo/bar", domain)]
    clock.advance(10)
    [result] = backend.maintain_many([("foo/bar", domain, POLICY)])
    assert result == MaintenanceResult(undelayed=1, ready=1)
    popped = queue.pop()
    assert popped is not None and popped.domain == domain


# -- ghost IDs do not end a pop ---------------------------------------------------------------


def test_ghost_id_is_dropped_and_pop_goes_on(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    prefix = "enwiki:jobqueue:null:"
    redis_client.hset(f"{prefix}h-sha1ById", "ghost", "s" * 31)
    redis_client.hset(f"{prefix}h-idBySha1", "s" * 31, "ghost")
    redis_client.hset(f"{prefix}h-attempts", "ghost", 2)
    plant(redis_client, queue, "ghost", None)
    queue.push([JobSpec.create("null", {"n": 1})])
    popped = queue.pop()
    assert popped is not None and popped.params["n"] == 1  # MW would have said "empty"
    assert redis_client.zrange(f"{prefix}z-claimed", 0, -1) == [popped.id.encode()]
    assert redis_client.hkeys(f"{prefix}h-attempts") == [popped.id.encode()]
    assert redis_client.hlen(f"{prefix}h-idBySha1") == 0
    assert redis_client.hlen(f"{prefix}h-sha1ById") == 0


def test_more_ghosts_than_one_call_may_drop(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    queue.push([JobSpec.create("null", {"n": 1})])
    # RPUSH: the ghosts sit at the pop end, in front of the real job.
    ghosts = [f"g{i}" for i in range(GHOST_BUDGET * 2 + 5)]
    redis_client.rpush("enwiki:jobqueue:null:l-unclaimed", *ghosts)
    popped = queue.pop_many(2)
    assert [job.params["n"] for job in popped] == [1]
    assert queue.sizes().unclaimed == 0


# -- corrupt records --------------------------------------------------------------------------


def test_corrupt_record_is_set_aside_with_its_data(
    backend: RedisBackend, redis_client: redis.Redis, events: EventRecorder
) -> None:
    queue = backend.queue("enwiki", "null")
    plant(redis_client, queue, "bad", b"a:1:{")
    queue.push([JobSpec.create("null", {"n": 1})])
    popped = queue.pop()
    assert popped is not None and popped.params["n"] == 1
    prefix = "enwiki:jobqueue:null:"
    assert redis_client.zrange(f"{prefix}z-abandoned", 0, -1, withscores=True) == [
        (b"bad", float(T0))
    ]
    assert redis_client.hget(f"{prefix}h-data", "bad") == b"a:1:{"  # kept for inspection
    assert redis_client.hget(f"{prefix}h-attempts", "bad") == b"1"
    assert events.totals()["corrupt"] == 1


def test_listing_skips_records_missing_or_unreadable(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    queue.push([JobSpec.create("null", {"n": 1})])
    plant(redis_client, queue, "bad", b"x")
    plant(redis_client, queue, "ghost", None)
    queue.push([JobSpec.create("null", {"n": 2})])
    listed = queue.list_jobs(JobState.UNCLAIMED)
    assert [job.params["n"] for job in listed] == [1, 2]


# -- abandoned jobs keep their queue listed (the PHP chron dropped it) -------------------------


def test_abandoned_jobs_keep_the_queue_registered_until_pruned(
    backend: RedisBackend, redis_client: redis.Redis, clock: FakeClock
) -> None:
    queue = backend.queue("enwiki", "null")
    queue.push([JobSpec.create("null", {"n": 1})])
    assert queue.pop() is not None
    clock.advance(3600)
    one_try = MaintenancePolicy(max_attempts=1)
    assert queue.maintain(one_try) == MaintenanceResult(abandoned=1)
    assert redis_client.smembers(QUEUES_WITH_JOBS_KEY) == {b'["null","enwiki"]'}
    clock.now = T0 + 7 * DAY
    assert backend.maintain_many([("null", "enwiki", one_try)]) == [MaintenanceResult(pruned=1)]
    assert redis_client.smembers(QUEUES_WITH_JOBS_KEY) == set()
    assert keys_of(redis_client) == set()


def test_missing_attempts_counter_does_not_break_maintenance(
    backend: RedisBackend, redis_client: redis.Redis, clock: FakeClock
) -> None:
    queue = backend.queue("enwiki", "null")
    queue.push([JobSpec.create("null", {"n": 1}), JobSpec.create("null", {"n": 2})])
    first, _second = queue.pop_many(2)
    redis_client.hdel("enwiki:jobqueue:null:h-attempts", first.id)
    clock.advance(3600)
    assert queue.maintain(POLICY) == MaintenanceResult(released=2, ready=2)


def test_bad_members_of_queues_with_jobs_are_skipped(
    backend: RedisBackend, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    redis_client.sadd(
        QUEUES_WITH_JOBS_KEY, '["null","enwiki"]', "not json", '["only-type"]', b"\xff\xfe"
    )
    with caplog.at_level("WARNING", logger="mwjobs.queues.redis"):
        assert backend.queues_with_jobs() == [("null", "enwiki")]
    assert len(caplog.records) == 3
    assert all(backend.endpoint.display in record.getMessage() for record in caplog.records)


def test_delete_leaves_root_jobs_and_other_queues(
    backend: RedisBackend, redis_client: redis.Redis, clock: FakeClock
) -> None:
    queue = backend.queue("enwiki", "null")
    spec = JobSpec.create("null", root_params("ab" * 20, "20231114221320"), remove_duplicates=True)
    queue.push([spec, JobSpec.create("null", {"n": 2}, release_at=T0 + 60)])
    queue.pop()
    backend.queue("dewiki", "null").push([JobSpec.create("null", {"n": 3})])
    queue.delete()
    assert keys_of(redis_client) == {
        root_job_key("enwiki", "null", "ab" * 20),
        QUEUES_WITH_JOBS_KEY,
        "dewiki:jobqueue:null:l-unclaimed",
        "dewiki:jobqueue:null:h-data",
    }
    assert redis_client.smembers(QUEUES_WITH_JOBS_KEY) == {b'["null","dewiki"]'}


# -- scripts: NOSCRIPT recovery, pipelining, package data --------------------------------------


def test_script_flush_mid_run_is_recovered(
    backend: RedisBackend, redis_client: redis.Redis, clock: FakeClock
) -> None:
    """EVALSHA answers NOSCRIPT after a flush (a restart, a fail-over): single calls fall
    back to EVAL, pipelined ones are reloaded and re-run, and nothing runs twice."""
    scripts = backend.scripts
    queue = backend.queue("enwiki", "null")
    other = backend.queue("dewiki", "null")
    assert queue.push([JobSpec.create("null", {"n": n}) for n in range(3)]) == 3
    other.push([JobSpec.create("null", {"n": 9})])
    redis_client.script_flush()
    popped = queue.pop_many(2)
    assert [job.params["n"] for job in popped] == [0, 1]
    assert redis_client.script_exists(scripts.pop_many.sha) == [True]  # EVAL cached it

    redis_client.script_flush()
    clock.advance(3600)
    results = backend.maintain_many([("null", "enwiki", POLICY), ("null", "dewiki", POLICY)])
    assert results == [MaintenanceResult(released=2, ready=3), MaintenanceResult(ready=1)]
    assert redis_client.script_exists(scripts.maintain.sha) == [True]

    redis_client.script_flush()
    assert queue.ack_many(queue.pop_many(3)) == [True, True, True]
    assert queue.sizes().total == 0


def test_maintain_many_reports_a_failing_queue_in_place(
    backend: RedisBackend, redis_client: redis.Redis, events: EventRecorder
) -> None:
    backend.queue("enwiki", "null").push([JobSpec.create("null", {"n": 1})])
    redis_client.hset("dewiki:jobqueue:null:h-data", "x", "y")
    redis_client.set("dewiki:jobqueue:null:z-claimed", "not a zset")  # WRONGTYPE in the script
    results = backend.maintain_many(
        [("null", "dewiki", POLICY), ("null", "enwiki", POLICY)], now=T0 + 3600
    )
    assert isinstance(results[0], QueueError)
    assert "maintenance of the 'null' queue of 'dewiki'" in str(results[0])
    assert backend.endpoint.display in str(results[0])
    assert results[1] == MaintenanceResult(ready=1)
    assert backend.maintain_many([]) == []


def test_every_script_ships_with_a_key_schema_header() -> None:
    scripts = load_scripts()
    for name in ("push", "pop_many", "ack", "maintain", "delete", "set_aside"):
        text = getattr(scripts, name).text
        assert text.startswith(f"-- {name}: "), name
        assert "\n-- KEYS[1" in text and "\n-- ARGV[1" in text, name


def root_params(signature: str, timestamp: str) -> dict[PhpKey, PhpValue]:
    """What ``Job::newRootJobParams`` gives a root job (``new_root_job_params`` shape)."""
    return {"rootJobIsSelf": True, "rootJobSignature": signature, "rootJobTimestamp": timestamp}


# -- root jobs --------------------------------------------------------------------------------


def test_root_job_key_and_ttl(backend: RedisBackend, redis_client: redis.Redis) -> None:
    queue = backend.queue("enwiki", "htmlCacheUpdate")
    signature = "ab" * 20
    spec = JobSpec.create("htmlCacheUpdate", root_params(signature, "20231114221320"))
    assert queue.push([spec]) == 1
    key = root_job_key("enwiki", "htmlCacheUpdate", signature)
    assert key == f"global:jobqueue:enwiki:htmlCacheUpdate:rootjob:{signature}"
    assert redis_client.get(key) == b"20231114221320"
    assert ROOT_JOB_TTL - 5 <= redis_client.ttl(key) <= ROOT_JOB_TTL
    assert queue.deduplicate_root_job(spec) is True
    redis_client.set(key, "20231114221321")  # someone registered a newer root
    popped = queue.pop()
    assert popped is not None and popped.is_duplicate is True
    assert redis_client.get(key) == b"20231114221321"  # the check only reads


# -- connections and errors -------------------------------------------------------------------


def test_nothing_connects_before_the_first_operation() -> None:
    port = free_port()
    backend = RedisBackend(f"127.0.0.1:{port}")
    queue = backend.queue("enwiki", "null")
    assert isinstance(queue, RedisJobQueue)
    with pytest.raises(QueueError) as caught:
        queue.pop()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "pop from the 'null' queue of 'enwiki'" in message
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


def test_every_operation_maps_connection_errors() -> None:
    port = free_port()
    backend = RedisBackend(RedisEndpoint("127.0.0.1", port, password="s3cret", connect_timeout=1.0))
    queue = backend.queue("enwiki", "null")
    spec = JobSpec.create("null", {"n": 1})
    root = JobSpec.create("null", root_params("ab" * 20, "20231114221320"))
    calls: list[Callable[[], object]] = [
        lambda: queue.push([spec]),
        queue.sizes,
        lambda: queue.list_jobs(JobState.DELAYED),
        queue.delete,
        lambda: queue.deduplicate_root_job(root),
        backend.queues_with_jobs,
    ]
    for call in calls:
        with pytest.raises(QueueError, match=f"Redis 127.0.0.1:{port}: ") as caught:
            call()
        assert "s3cret" not in str(caught.value)
    [failed] = backend.maintain_many([("null", "enwiki", POLICY)])
    assert isinstance(failed, QueueError) and str(port) in str(failed)


def test_server_restart_is_survived(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server that dies mid-run fails the next call with QueueError; once back, the same
    backend reconnects by itself."""
    server = RedisServer(tmp_path_factory.mktemp("redis-restart"))
    server.start()
    backend = RedisBackend(server.url)
    queue = backend.queue("enwiki", "null")
    try:
        queue.push([JobSpec.create("null", {"n": 1})])
        server.kill()
        with pytest.raises(QueueError):
            queue.sizes()
        server.start()
        assert queue.push([JobSpec.create("null", {"n": 2})]) == 1
        assert queue.sizes().unclaimed == 1  # no persistence: only the new job
    finally:
        backend.close()
        server.stop()


def test_unix_socket_and_from_client(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    via_socket = RedisBackend(str(redis_server.socket_path))
    assert via_socket.endpoint.display == f"unix:{redis_server.socket_path}"
    via_socket.queue("enwiki", "null").push([JobSpec.create("null", {"n": 1})])
    borrowed = RedisBackend.from_client(redis_client)
    assert borrowed.endpoint.display == redis_server.address
    assert borrowed.queue("enwiki", "null").sizes().unclaimed == 1
    borrowed.close()
    assert redis_client.ping()  # still the caller's to close
    via_socket.close()
    with pytest.raises(ValueError, match="decode_responses"):
        RedisBackend.from_client(redis.Redis.from_url(redis_server.url, decode_responses=True))


def test_compression_writes_the_gzip_wrapper(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    backend = RedisBackend(redis_server.url, compression=True)
    queue = backend.queue("enwiki", "null")
    small = JobSpec.create("null", {"n": 1})
    large = JobSpec.create("null", {"text": "lorem ipsum " * 200})
    queue.push([small, large])
    blobs = redis_client.hvals("enwiki:jobqueue:null:h-data")
    assert sorted(blob[:14] for blob in blobs) == [b'O:8:"stdClass"', b'a:8:{s:4:"type']
    popped = queue.pop_many(2)
    assert [job.params.get("n") for job in popped] == [1, None]
    assert popped[1].params["text"] == "lorem ipsum " * 200


# -- endpoints --------------------------------------------------------------------------------

GOOD_ENDPOINTS: list[tuple[str, RedisEndpoint]] = [
    ("localhost", RedisEndpoint("localhost")),
    ("  10.0.0.1:6380 ", RedisEndpoint("10.0.0.1", 6380)),
    ("redis.example.org:7000", RedisEndpoint("redis.example.org", 7000)),
    ("[::1]:6380", RedisEndpoint("::1", 6380)),
    ("[fe80::1]", RedisEndpoint("fe80::1")),
    ("::1", RedisEndpoint("::1")),
    ("/var/run/redis.sock", RedisEndpoint("", unix_socket="/var/run/redis.sock")),
    ("unix:///var/run/redis.sock", RedisEndpoint("", unix_socket="/var/run/redis.sock")),
    ("unix:///tmp/r.sock?db=3", RedisEndpoint("", unix_socket="/tmp/r.sock", db=3)),
    ("redis://h", RedisEndpoint("h")),
    ("redis://h:6390/2", RedisEndpoint("h", 6390, db=2)),
    ("redis://h/?db=4", RedisEndpoint("h", db=4)),
    ("redis://[::1]:7000/1", RedisEndpoint("::1", 7000, db=1)),
    (
        "redis://user:p%40ss@h:6390/2",
        RedisEndpoint("h", 6390, db=2, username="user", password="p@ss"),
    ),
    ("redis://:secret@h", RedisEndpoint("h", password="secret")),
    ("rediss://h:6380", RedisEndpoint("h", 6380, tls=True)),
    ("REDISS://h", RedisEndpoint("h", tls=True)),
]


@pytest.mark.parametrize(("text", "expected"), GOOD_ENDPOINTS)
def test_parse_endpoint(text: str, expected: RedisEndpoint) -> None:
    assert parse_redis_endpoint(text) == expected


def test_parse_endpoint_credentials_defaults() -> None:
    assert parse_redis_endpoint("h:1", password="pw", username="u") == RedisEndpoint(
        "h", 1, password="pw", username="u"
    )
    assert parse_redis_endpoint("redis://:url@h", password="cfg").password == "url"
    assert parse_redis_endpoint("/s.sock", password="pw").password == "pw"


BAD_ENDPOINTS = [
    ("", "empty"),
    ("host:", "port ''"),
    ("host:abc", "port 'abc'"),
    ("host:70000", "port '70000'"),
    ("host:0", "port '0'"),
    ("ho st", "not a host"),
    ("[zz]:1", "not an IPv6"),
    ("1:2:3", "not an IPv6"),
    ("http://h", "scheme 'http'"),
    ("redis://h/x", "database 'x'"),
    ("redis://h/1?db=2", "database 1 but db= says 2"),
    ("redis://h?timeout=1", "unknown URL option 'timeout'"),
    ("redis://h:99999", "port"),
    ("redis://", "no host"),
    ("unix://relative.sock", "absolute socket path"),
]


@pytest.mark.parametrize(("text", "reason"), BAD_ENDPOINTS)
def test_parse_endpoint_rejects(text: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redis_endpoint(text)
    message = str(caught.value)
    assert repr(text.strip()) in message
    assert reason in message
    assert "host:port" in message  # the fix: the accepted forms


def test_bad_endpoint_message_masks_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redis_endpoint("redis://u:hunter2@h:99999")
    assert "hunter2" not in str(caught.value)
    assert "redis://u:***@h:99999" in str(caught.value)


def test_endpoint_never_shows_its_password() -> None:
    endpoint = parse_redis_endpoint("rediss://u:hunter2@h:6380/3")
    assert endpoint.display == "tls:h:6380/3"
    assert "hunter2" not in repr(endpoint)
    assert RedisEndpoint("::1", 7000).display == "[::1]:7000"
    assert RedisEndpoint("", unix_socket="/s").display == "unix:/s"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": ""},
        {"host": "h", "port": 0},
        {"host": "h", "db": -1},
        {"host": "", "unix_socket": "/s", "tls": True},
        {"host": "h", "read_timeout": 0},
    ],
)
def test_endpoint_validates_its_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RedisEndpoint(**kwargs)  # type: ignore[arg-type]


def test_ids_are_unique_per_push(backend: RedisBackend) -> None:
    queue = backend.queue("enwiki", "null")
    queue.push([JobSpec.create("null", {"n": n}) for n in range(50)])
    listed = queue.list_jobs(JobState.UNCLAIMED)
    assert len({job.id for job in listed}) == 50
    assert all(len(job.id) == 32 for job in itertools.islice(listed, 5))
