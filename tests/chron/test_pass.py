"""One chron pass against the private Redis with the clock injected: the job life cycle
(recycle, abandon, prune, undelay), the ready-queue map, the lock, odd names and failures."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest
import redis

from mwjobs.chron import Counters, PassResult
from mwjobs.codec import (
    QUEUES_WITH_JOBS_KEY,
    aggregator_field,
    chron_lock_key,
    make_domain,
    queue_id_json,
    queue_key,
)
from mwjobs.model.data import JobSpec, JobState
from mwjobs.queues.base import MaintenancePolicy, MaintenanceResult
from mwjobs.queues.redis import RedisBackend
from mwjobs.queues.redis.failover import RedisFailover
from mwjobs.queues.redis.lock import RedisPoolLock, php_float_string
from mwjobs.queues.redis.replies import byte_list, byte_map, scored_list
from tests.chron.conftest import (
    DAY,
    HOST,
    T0,
    MakeChron,
    Recorder,
    make_config,
    ready_map,
    recorder,
)
from tests.queues.clock import FakeClock
from tests.servers import RedisServer, free_port

DOMAIN = "enwiki"


def push(backend: RedisBackend, job_type: str = "null", n: int = 1, domain: str = DOMAIN,
         release_at: float | None = None) -> None:  # fmt: skip
    specs = [JobSpec.create(job_type, {"n": i}, request_id="r", release_at=release_at)
             for i in range(n)]  # fmt: skip
    assert backend.queue(domain, job_type).push(specs) == n


def pop(backend: RedisBackend, job_type: str = "null", n: int = 1, domain: str = DOMAIN) -> None:
    assert len(backend.queue(domain, job_type).pop_many(n)) == n


def members(client: redis.Redis, key: str) -> list[str]:
    raw = byte_list(client.lrange(key, 0, -1))
    return [m.decode() for m in raw]


def lock_keys(client: redis.Redis) -> list[bytes]:
    found = byte_list(client.keys("RedisJobChronService::executePeriodicTasks:lock:*"))
    return found


# -- the job life cycle ------------------------------------------------------------------------


def test_recycle_exactly_at_the_claim_ttl_not_a_second_before(
    make_chron: MakeChron, backend: RedisBackend, clock: FakeClock
) -> None:
    push(backend)
    pop(backend)  # claimed at T0
    chron = make_chron()
    early = chron.run_pass(T0 + 3599)
    assert (early.claimed, early.ok, early.released, early.affected) == (True, True, 0, 0)
    assert backend.queue(DOMAIN, "null").sizes().claimed == 1
    on_time = chron.run_pass(T0 + 3600)
    assert on_time.released == 1
    sizes = backend.queue(DOMAIN, "null").sizes()
    assert (sizes.unclaimed, sizes.claimed) == (1, 0)
    assert recorder(chron).total("job-recycle.null") == 1


def test_claim_ttl_and_attempts_come_from_limits_per_type(
    make_chron: MakeChron, backend: RedisBackend, redis_server: RedisServer
) -> None:
    config = make_config(
        [redis_server.address],
        limits={"claimTTL": {"*": 3600, "slow": 86400}, "attempts": {"*": 3, "once": 1}},
    )
    for job_type in ("null", "slow", "once"):
        push(backend, job_type)
        pop(backend, job_type)
    chron = make_chron(config)
    assert chron.policy("slow") == MaintenancePolicy(claim_ttl=86400, max_attempts=3)
    result = chron.run_pass(T0 + 3600)
    # null: recycled; slow: not stale yet; once: out of attempts after one run.
    assert (result.released, result.abandoned) == (1, 1)
    assert backend.queue(DOMAIN, "slow").sizes().claimed == 1
    assert backend.queue(DOMAIN, "once").sizes().abandoned == 1


def test_abandon_at_the_attempt_limit_keeps_the_last_claim_time(
    make_chron: MakeChron, backend: RedisBackend, clock: FakeClock, redis_client: redis.Redis
) -> None:
    chron = make_chron()
    push(backend)
    for attempt in (1, 2, 3):
        pop(backend)
        clock.advance(3600)
        result = chron.run_pass(clock())
        assert (result.released, result.abandoned) == ((1, 0) if attempt < 3 else (0, 1))
    last_claim = T0 + 2 * 3600
    abandoned = scored_list(redis_client.zrange(
        queue_key(DOMAIN, "null", "z-abandoned"), 0, -1, withscores=True
    ))
    assert [score for _, score in abandoned] == [last_claim]
    assert recorder(chron).total("job-abandon.null") == 1


def test_prune_seven_days_after_the_last_claim(
    make_chron: MakeChron, backend: RedisBackend, redis_client: redis.Redis,
    redis_server: RedisServer,
) -> None:  # fmt: skip
    chron = make_chron(make_config([redis_server.address], limits={"attempts": {"*": 1}}))
    push(backend)
    pop(backend)  # claimed at T0, its only attempt
    assert chron.run_pass(T0 + 3600).abandoned == 1
    queue_id = queue_id_json("null", DOMAIN)
    # Abandoned-only queues stay listed so they are pruned at all (the PHP chron dropped them).
    assert redis_client.sismember(QUEUES_WITH_JOBS_KEY, queue_id)
    assert chron.run_pass(T0 + 7 * DAY - 1).pruned == 0
    result = chron.run_pass(T0 + 7 * DAY)
    assert (result.pruned, result.affected) == (1, 1)
    assert redis_client.hlen(queue_key(DOMAIN, "null", "h-data")) == 0
    assert not redis_client.sismember(QUEUES_WITH_JOBS_KEY, queue_id)
    assert recorder(chron).total("job-prune.null") == 1


def test_undelay_at_the_release_time_to_the_back_of_the_queue(
    make_chron: MakeChron, backend: RedisBackend, redis_client: redis.Redis
) -> None:
    push(backend, release_at=T0 + 100)
    push(backend, n=1)  # ready at once
    [delayed] = backend.queue(DOMAIN, "null").list_jobs(JobState.DELAYED)
    chron = make_chron()
    assert chron.run_pass(T0 + 99).undelayed == 0
    assert chron.run_pass(T0 + 99).ready == {("null", DOMAIN): T0 + 99}
    result = chron.run_pass(T0 + 100)
    assert result.undelayed == 1
    # LPUSH: the undelayed job is popped after the one already waiting (right end pops).
    unclaimed = members(redis_client, queue_key(DOMAIN, "null", "l-unclaimed"))
    assert len(unclaimed) == 2 and unclaimed[0] == delayed.id
    assert recorder(chron).total("job-undelay.null") == 1


def test_affected_notice(
    make_chron: MakeChron, backend: RedisBackend, caplog: pytest.LogCaptureFixture
) -> None:
    push(backend, n=3)
    pop(backend, n=2)
    push(backend, "later", release_at=T0 + 10)
    chron = make_chron()
    with caplog.at_level(logging.INFO, "mwjobs.chron"):
        chron.run_pass(T0 + 1)
        assert "Updated the state" not in caplog.text
        assert chron.run_pass(T0 + 3600).affected == 3
    assert "Updated the state of 3 job(s) (recycle/undelay/abandon)." in caplog.text


# -- the ready-queue map -----------------------------------------------------------------------


def test_ready_map_holds_the_ready_queues_and_drops_drained_ones(
    make_chron: MakeChron, backend: RedisBackend, redis_client: redis.Redis
) -> None:
    push(backend, "null", 2)
    push(backend, "refreshLinks", 1, domain="dewiki")
    push(backend, "delayed", release_at=T0 + 500)
    push(backend, "claimedOnly")
    pop(backend, "claimedOnly")
    chron = make_chron()
    result = chron.run_pass(T0 + 5)
    expected = {("null", DOMAIN): T0 + 5, ("refreshLinks", "dewiki"): T0 + 5}
    assert result.ready == expected
    assert ready_map(redis_client) == (expected, T0 + 5)
    raw = byte_map(redis_client.hgetall("jobqueue:aggregator:h-ready-queues:v2"))
    assert raw == {
        b"_epoch": str(T0 + 5).encode(),
        b"null/enwiki": str(T0 + 5).encode(),
        b"refreshLinks/dewiki": str(T0 + 5).encode(),
    }
    assert not redis_client.exists("jobqueue:aggregator:h-ready-queues:v2:temp")
    # Drain one queue: the next pass drops it; the map keeps only what is ready now.
    queue = backend.queue(DOMAIN, "null")
    queue.ack_many(queue.pop_many(2))
    assert chron.run_pass(T0 + 6).ready == {("refreshLinks", "dewiki"): T0 + 6}
    assert ready_map(redis_client) == ({("refreshLinks", "dewiki"): T0 + 6}, T0 + 6)
    assert not redis_client.sismember(QUEUES_WITH_JOBS_KEY, queue_id_json("null", DOMAIN))


def test_empty_pass_still_writes_the_epoch(
    make_chron: MakeChron, redis_client: redis.Redis
) -> None:
    result = make_chron().run_pass(T0)
    assert (result.claimed, result.ok, result.queues, dict(result.ready)) == (True, True, 0, {})
    assert ready_map(redis_client) == ({}, T0)


def test_names_with_dash_slash_space_and_non_ascii(
    make_chron: MakeChron, backend: RedisBackend, redis_client: redis.Redis
) -> None:
    job_type = "ref/Test job-é"
    domain = make_domain("my-wiki 日本", None, "mw_")  # DB name with "-": domain != wiki ID
    assert domain == "my?hwiki 日本-mw_"
    push(backend, job_type, 2, domain=domain)
    pop(backend, job_type, 1, domain=domain)
    push(backend, job_type, 1, domain=domain, release_at=T0 + 10)
    chron = make_chron()
    result = chron.run_pass(T0 + 3600)
    assert (result.released, result.undelayed, result.failed_queues) == (1, 1, ())
    assert result.ready == {(job_type, domain): T0 + 3600}
    field = aggregator_field(job_type, domain)
    assert field == "ref%2FTest%20job-%C3%A9/my%3Fhwiki%20%E6%97%A5%E6%9C%AC-mw_"
    assert redis_client.hget("jobqueue:aggregator:h-ready-queues:v2", field) == b"%d" % (T0 + 3600)
    assert ready_map(redis_client)[0] == {(job_type, domain): T0 + 3600}
    # MediaWiki's key rule (rawurlencoded wiki ID "my-wiki 日本-mw_"), not the raw domain.
    assert redis_client.llen(queue_key(domain, job_type, "l-unclaimed")) == 3
    assert redis_client.llen("my%2Dwiki%20%E6%97%A5%E6%9C%AC-mw_:jobqueue:x:l-unclaimed") == 0
    assert recorder(chron).total(f"job-recycle.{job_type}") == 1


# -- failures ----------------------------------------------------------------------------------


def test_corrupt_queue_id_is_logged_and_skipped(
    make_chron: MakeChron, backend: RedisBackend, redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    push(backend, n=1)
    redis_client.sadd(QUEUES_WITH_JOBS_KEY, "not json", '["only-one"]', b"\xff\xfe")
    with caplog.at_level(logging.WARNING):
        result = make_chron().run_pass(T0)
    assert result.ok and result.queues == 1
    assert result.ready == {("null", DOMAIN): T0}
    assert "not json" in caplog.text and "only-one" in caplog.text


class FlushScriptsAfterFirstCall(RedisBackend):
    """A partition whose script cache is wiped (Redis restart, SCRIPT FLUSH) mid-pass."""

    flushed = False

    def maintain_many(
        self, items: Sequence[tuple[str, str, MaintenancePolicy]], now: int | None = None
    ) -> list[MaintenanceResult | Exception]:
        results = super().maintain_many(items, now)
        if not self.flushed:
            self.client.script_flush()
            self.flushed = True
        return results


def test_noscript_after_script_flush_recovers_within_the_pass(
    make_chron: MakeChron, backend: RedisBackend, redis_server: RedisServer, clock: FakeClock
) -> None:
    for job_type in ("a", "b", "c", "d"):
        push(backend, job_type)
        pop(backend, job_type)
    partition = FlushScriptsAfterFirstCall(redis_server.url, clock=clock)
    chron = make_chron(partitions={redis_server.address: partition}, chunk=1)
    result = chron.run_pass(T0 + 3600)
    assert partition.flushed
    assert (result.ok, result.queues, result.released) == (True, 4, 4)


class Exploding(RedisBackend):
    def maintain_many(
        self, items: Sequence[tuple[str, str, MaintenancePolicy]], now: int | None = None
    ) -> list[MaintenanceResult | Exception]:
        raise RuntimeError("a bug in a backend")


def test_lock_is_released_after_an_error(
    make_chron: MakeChron, backend: RedisBackend, redis_server: RedisServer,
    redis_client: redis.Redis, clock: FakeClock,
) -> None:  # fmt: skip
    push(backend)
    chron = make_chron(partitions={redis_server.address: Exploding(redis_server.url)})
    with pytest.raises(RuntimeError, match="a bug"):
        chron.run_pass(T0)
    assert lock_keys(redis_client) == []
    # So the next pass (here: of a healthy chron) is not raced out for 300 s.
    assert make_chron().run_pass(T0 + 1).claimed


def test_lock_is_released_after_a_pass(
    make_chron: MakeChron, backend: RedisBackend, redis_client: redis.Redis
) -> None:
    push(backend)
    assert make_chron().run_pass(T0).claimed
    assert lock_keys(redis_client) == []


def test_failing_queue_is_reported_and_the_others_served(
    make_chron: MakeChron, backend: RedisBackend, redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    push(backend, "good")
    push(backend, "bad")
    redis_client.delete(queue_key(DOMAIN, "bad", "z-claimed"))
    redis_client.set(queue_key(DOMAIN, "bad", "z-claimed"), "not a zset")  # WRONGTYPE
    chron = make_chron()
    with caplog.at_level(logging.ERROR):
        result = chron.run_pass(T0)
    assert result.failed_queues == (("bad", DOMAIN),)
    assert not result.ok and result.failed_partitions == ()
    assert result.ready == {("good", DOMAIN): T0}
    assert "Failed to do periodic tasks for some queues." in caplog.text
    assert recorder(chron).total(f"periodictasks.failed.{HOST}") == 1
    assert recorder(chron).total(f"redis-error.{HOST}") == 1


# -- the pool lock: two chrons at once ---------------------------------------------------------


def test_second_chron_is_raced_out_while_the_first_holds_the_only_slot(
    make_chron: MakeChron, backend: RedisBackend, redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    push(backend)
    pop(backend)
    other = RedisPoolLock(RedisFailover([backend.endpoint]), slots=1)
    assert other.acquire(T0 + 3600) == 0  # another chron, mid-pass
    chron = make_chron()
    with caplog.at_level(logging.INFO):
        result = chron.run_pass(T0 + 3600)
    assert result == PassResult(claimed=False, ok=True)
    assert "Raced out of periodic tasks." in caplog.text
    assert backend.queue(DOMAIN, "null").sizes().claimed == 1  # untouched
    assert recorder(chron).total(f"periodictasks.raced.{HOST}") == 1
    assert f"periodictasks.claimed.{HOST}" not in recorder(chron).names()
    other.release(0)
    assert chron.run_pass(T0 + 3600).released == 1


class Gate(RedisBackend):
    """A partition that holds its first maintenance call until the test opens the gate."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.inside = threading.Event()
        self.gate = threading.Event()

    def maintain_many(
        self, items: Sequence[tuple[str, str, MaintenancePolicy]], now: int | None = None
    ) -> list[MaintenanceResult | Exception]:
        self.inside.set()
        assert self.gate.wait(10), "the test never opened the gate"
        return super().maintain_many(items, now)


def test_two_chrons_at_once_handle_no_job_twice(
    make_chron: MakeChron, backend: RedisBackend, redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    push(backend, n=5)
    pop(backend, n=5)
    gate = Gate(redis_server.url)
    first = make_chron(partitions={redis_server.address: gate})
    second = make_chron()
    results: list[PassResult] = []
    thread = threading.Thread(target=lambda: results.append(first.run_pass(T0 + 3600)))
    thread.start()
    try:
        assert gate.inside.wait(10)
        raced = second.run_pass(T0 + 3600)
    finally:
        gate.gate.set()
        thread.join(10)
    assert raced == PassResult(claimed=False, ok=True)
    assert results[0].released == 5
    unclaimed = members(redis_client, queue_key(DOMAIN, "null", "l-unclaimed"))
    assert len(unclaimed) == len(set(unclaimed)) == 5


def test_a_php_chrons_fresh_lock_is_respected_and_a_stale_one_taken(
    make_chron: MakeChron, redis_client: redis.Redis
) -> None:
    key = chron_lock_key(0)
    assert key == "RedisJobChronService::executePeriodicTasks:lock:0"
    redis_client.set(key, php_float_string(T0 - 299.5))  # what PHP's microtime(true) leaves
    chron = make_chron()
    assert not chron.run_pass(T0).claimed
    redis_client.set(key, php_float_string(T0 - 300.5))  # older than pool_lock_ttl
    assert chron.run_pass(T0).claimed
    assert lock_keys(redis_client) == []


def test_unreachable_aggregator_fails_the_pass_without_raising(
    make_chron: MakeChron, backend: RedisBackend, redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    config = make_config([redis_server.address], [f"127.0.0.1:{free_port()}"])
    chron = make_chron(config)
    with caplog.at_level(logging.ERROR):
        result = chron.run_pass(T0)
    assert result == PassResult(claimed=False, ok=False)
    assert "Could not take a chron lock slot" in caplog.text
    metrics = recorder(chron)
    assert metrics.total(f"periodictasks.failed.{HOST}") == 1
    assert metrics.total(f"redis-error.{HOST}") == 1


def test_recorder_is_a_counters() -> None:
    sink: Counters = Recorder()
    sink.incr("x", 0)
    assert isinstance(sink, Recorder) and sink.events == []
