"""Handoff: a push claims its job for a consumer blocked in ``HandoffWaiter.wait``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from mwjobs.codec import QUEUES_WITH_JOBS_KEY, encode_record
from mwjobs.group import JobQueueGroup
from mwjobs.model.data import JobSpec, JobState, QueuedJob, new_root_job_params
from mwjobs.queues.base import JobWaiter, MaintenancePolicy
from mwjobs.queues.redis import RedisBackend, RedisJobQueue, redis_version
from mwjobs.queues.redis.handoff import HANDOFF_PREFIX, HandoffWaiter, parse_handoff
from tests.servers import RedisServer, wait_until


@pytest.fixture
def backend(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[RedisBackend]:
    backend = RedisBackend(redis_server.url)  # redis_client flushed the server first
    yield backend
    backend.close()


class Waiting:
    """``waiter.wait(timeout)`` in a thread, so the test can push while it blocks."""

    def __init__(
        self, waiter: JobWaiter, timeout: float, skip: frozenset[str] | set[str] = frozenset()
    ) -> None:
        self.waiter = waiter
        self.result: list[QueuedJob] | None = None
        self.thread = threading.Thread(target=self._run, args=(waiter, timeout, skip), daemon=True)
        self.thread.start()

    @classmethod
    def on(cls, queue: RedisJobQueue, client: redis.Redis, timeout: float = 10) -> Waiting:
        """A new waiter of ``queue`` blocked in its wait (registered) when this returns."""
        waiting = cls(queue.redis.waiter([queue]), timeout)
        wait_until(registered(client, queue), 5, "the waiter's registration")
        return waiting

    def _run(self, waiter: JobWaiter, timeout: float, skip: frozenset[str] | set[str]) -> None:
        self.result = waiter.wait(timeout, skip)

    def join(self) -> list[QueuedJob]:
        self.thread.join(10)
        assert self.result is not None, "the wait did not return"
        return self.result


def registered(client: redis.Redis, queue: RedisJobQueue) -> Callable[[], bool]:
    return lambda: int(client.zcard(queue.keys.waiters)) > 0


def spec(n: int, **options: object) -> JobSpec:
    return JobSpec.create("null", {"n": n}, **options)  # type: ignore[arg-type]


def test_a_push_hands_its_job_to_the_blocked_waiter_already_claimed(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    waiting = Waiting.on(queue, redis_client)
    waiter = waiting.waiter
    assert isinstance(waiter, HandoffWaiter)
    started = time.monotonic()
    assert queue.push([spec(1, remove_duplicates=True)]) == 1
    [job] = waiting.join()
    assert time.monotonic() - started < 2  # woken by the push, not by the 10 s timeout
    assert job.params["n"] == 1 and job.state is JobState.CLAIMED and job.attempts == 1
    # Exactly the state a pop leaves: claimed with a time, attempts 1, no dedup entry, the
    # record as pushed, the queue registered for the chron; nothing unclaimed.
    assert redis_client.llen(queue.keys.unclaimed) == 0
    assert redis_client.zscore(queue.keys.claimed, job.id) is not None
    assert redis_client.hget(queue.keys.attempts, job.id) == b"1"
    assert redis_client.hlen(queue.keys.id_by_sha1) == 0
    assert redis_client.hlen(queue.keys.sha1_by_id) == 0
    assert redis_client.sismember(QUEUES_WITH_JOBS_KEY, queue.keys.queue_id)
    assert redis_client.zcard(queue.keys.waiters) == 0  # one job per waiter
    assert queue.ack(job) is True
    assert queue.sizes().total == 0
    # A claimed job no longer blocks a duplicate (as after a pop).
    assert queue.push([spec(1, remove_duplicates=True)]) == 1
    assert waiter.close() == []


def test_the_handed_record_is_byte_identical_to_a_queued_one(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    waiting = Waiting.on(queue, redis_client)
    waiter = waiting.waiter
    pushed = spec(7)
    queue.push([pushed])
    [job] = waiting.join()
    stored = redis_client.hget(queue.keys.data, job.id)
    assert stored == encode_record(pushed.to_record(job.id, job.enqueue_timestamp))
    waiter.close()


def test_ready_jobs_return_at_once_without_registering(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    queue.push([spec(1)])
    waiter = backend.waiter([queue])
    started = time.monotonic()
    assert waiter.wait(10) == []  # pop it yourself
    assert time.monotonic() - started < 2
    assert redis_client.zcard(queue.keys.waiters) == 0
    assert queue.sizes().unclaimed == 1
    assert waiter.close() == []


def test_a_batch_hands_one_job_and_queues_the_rest_in_order(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    waiting = Waiting.on(queue, redis_client)
    waiter = waiting.waiter
    assert queue.push([spec(1), spec(2), spec(3)]) == 3
    [job] = waiting.join()
    assert job.params["n"] == 1
    assert [j.params["n"] for j in queue.pop_many(10)] == [2, 3]
    waiter.close()


def test_delayed_jobs_are_never_handed_over(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    waiting = Waiting.on(queue, redis_client, 0.5)
    waiter = waiting.waiter
    queue.push([spec(1, delay=600)])
    assert waiting.join() == []  # timed out
    assert queue.sizes().delayed == 1 and queue.sizes().claimed == 0
    waiter.close()


def test_an_expired_registration_gets_nothing(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    gone = HANDOFF_PREFIX + "dead"
    redis_client.zadd(queue.keys.waiters, {gone: 1})  # expired in 1970
    queue.push([spec(1)])
    assert queue.sizes().unclaimed == 1
    assert not redis_client.exists(gone)
    assert redis_client.zcard(queue.keys.waiters) == 0  # swept by the push


def test_no_handoff_while_older_jobs_wait_in_the_queue(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    # A waiter registered, then an older job arrived without a handoff (as MediaWiki's own
    # push does): the next push must queue behind it, not jump ahead.
    queue = backend.queue("enwiki", "null")
    live = HANDOFF_PREFIX + "live"
    redis_client.zadd(queue.keys.waiters, {live: time.time() * 1000 + 60_000})
    redis_client.lpush(queue.keys.unclaimed, "older")
    redis_client.hset(queue.keys.data, "older", encode_record(spec(0).to_record("older", 1)))
    queue.push([spec(1)])
    assert not redis_client.exists(live)
    assert [j.params["n"] for j in queue.pop_many(10)] == [0, 1]


def test_a_served_waiter_gets_nothing_more_while_it_is_busy(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    first, second = backend.queue("enwiki", "null"), backend.queue("enwiki", "other")
    waiting = Waiting(backend.waiter([first, second]), 10)
    wait_until(registered(redis_client, second), 5, "the waiter's registrations")
    first.push([spec(1)])
    assert [j.params["n"] for j in waiting.join()] == [1]
    # Served: its registration on the other queue ended with it, so the next job there is
    # queued for anyone, not claimed for a consumer that is busy running the first.
    second.push([JobSpec.create("other", {"n": 2})])
    assert (second.sizes().unclaimed, second.sizes().claimed) == (1, 0)
    assert waiting.waiter.close() == []


def test_one_push_of_two_types_serves_two_idle_waiters(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    group = JobQueueGroup(backend, "enwiki")
    queues = [backend.queue("enwiki", "null"), backend.queue("enwiki", "other")]
    waitings = [Waiting(backend.waiter(queues), 10) for _ in range(2)]
    wait_until(lambda: redis_client.zcard(queues[1].keys.waiters) == 2, 5, "both waiters")
    group.push([spec(1), JobSpec.create("other", {"n": 2})])
    got = [waiting.join() for waiting in waitings]
    assert sorted(len(jobs) for jobs in got) == [1, 1]
    assert sorted(str(job.params["n"]) for jobs in got for job in jobs) == ["1", "2"]
    for waiting in waitings:
        assert waiting.waiter.close() == []


def test_a_wait_that_times_out_leaves_every_queue(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    first, second = backend.queue("enwiki", "null"), backend.queue("enwiki", "other")
    waiter = backend.waiter([first, second])
    assert isinstance(waiter, HandoffWaiter)
    assert waiter.wait(0.05) == []
    assert redis_client.zcard(first.keys.waiters) == 0
    assert redis_client.zcard(second.keys.waiters) == 0
    assert not redis_client.exists(waiter.key + ":live")
    first.push([spec(1)])
    assert first.sizes().unclaimed == 1  # queued, not claimed for an idle-no-more waiter
    assert waiter.close() == []


def test_jobs_handed_over_between_waits_come_with_the_next_wait(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    waiter = backend.waiter([queue])
    assert isinstance(waiter, HandoffWaiter)
    # As if registered and served in the moment between a block ending and leaving.
    redis_client.set(waiter.key + ":live", 1)
    redis_client.zadd(queue.keys.waiters, {waiter.key: time.time() * 1000 + 60_000})
    queue.push([spec(1)])
    started = time.monotonic()
    [job] = waiter.wait(10)
    assert time.monotonic() - started < 2 and job.params["n"] == 1
    assert not redis_client.exists(waiter.key)  # taken off the list
    assert waiter.close() == []


def test_close_returns_what_was_handed_over_and_not_yet_taken(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    waiting = Waiting.on(queue, redis_client)
    queue.push([spec(1)])
    assert len(waiting.join()) == 1
    waiter = waiting.waiter
    assert isinstance(waiter, HandoffWaiter)
    redis_client.set(waiter.key + ":live", 1)  # registered again, as a next wait() would
    redis_client.zadd(queue.keys.waiters, {waiter.key: time.time() * 1000 + 60_000})
    waiter._registered = True
    queue.push([spec(2)])
    [left] = waiter.close()
    assert left.params["n"] == 2 and left.state is JobState.CLAIMED
    assert not redis_client.exists(waiter.key + ":live")
    queue.push([spec(3)])
    assert queue.sizes().unclaimed == 1  # after close: queued normally


def test_skipped_types_neither_end_the_wait_nor_get_jobs(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    throttled, other = backend.queue("enwiki", "null"), backend.queue("enwiki", "other")
    throttled.push([spec(1)])
    waiter = backend.waiter([throttled, other])
    started = time.monotonic()
    assert waiter.wait(0.2, skip={"null"}) == []  # its ready job does not end the wait
    assert time.monotonic() - started >= 0.2
    assert throttled.sizes().unclaimed == 1
    assert waiter.close() == []


def test_a_job_handed_to_a_dead_consumer_is_recycled_by_the_chron(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    dead = HANDOFF_PREFIX + "dead"
    redis_client.set(dead + ":live", 1, px=60_000)  # killed while blocked: still registered
    redis_client.zadd(queue.keys.waiters, {dead: time.time() * 1000 + 60_000})
    queue.push([spec(1)])
    assert redis_client.llen(dead) == 1 and 0 < redis_client.pttl(dead) <= 60_000
    claimed_at = int(redis_client.zrange(queue.keys.claimed, 0, 0, withscores=True)[0][1])
    result = queue.maintain(MaintenancePolicy(claim_ttl=10, max_attempts=3), claimed_at + 11)
    assert result.released == 1
    [job] = queue.pop_many(1)
    assert job.params["n"] == 1 and job.attempts == 2


def test_a_registration_without_its_live_key_is_passed_over(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    gone = HANDOFF_PREFIX + "left"  # its :live key expired or was deleted by leave.lua
    redis_client.zadd(queue.keys.waiters, {gone: time.time() * 1000 + 60_000})
    queue.push([spec(1)])
    assert queue.sizes().unclaimed == 1 and not redis_client.exists(gone)


def test_redis_version_is_read_from_info() -> None:
    assert redis_version({"redis_version": "7.0.15"}) == (7, 0, 15)
    assert redis_version({"redis_version": "5.0.7"}) < (6, 0)
    assert redis_version({"redis_version": "7.2.4-rc1"}) == (7, 2, 4)
    assert redis_version({}) == (0,)


def test_the_server_here_supports_handoff(backend: RedisBackend) -> None:
    assert backend.supports_handoff()


def test_an_unreadable_handed_record_is_set_aside(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    waiting = Waiting.on(queue, redis_client)
    waiter = waiting.waiter
    keys = queue.keys.for_push()
    backend.scripts.push.run(redis_client, keys, [queue.keys.queue_id, "", 1, "bad", "", 0,
                                                  b"a:1:{broken"])  # fmt: skip
    assert waiting.join() == []
    assert redis_client.zscore(queue.keys.abandoned, "bad") is not None
    assert redis_client.zcard(queue.keys.claimed) == 0
    waiter.close()


def test_superseded_root_jobs_come_back_as_duplicates(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    older = new_root_job_params("Template:X", now=1_700_000_000)
    newer = new_root_job_params("Template:X", now=1_700_000_060)
    queue.push([JobSpec.create("null", newer)])  # registers the newer root
    queue.pop_many(1)
    waiting = Waiting.on(queue, redis_client)
    waiter = waiting.waiter
    queue.push([JobSpec.create("null", older)])  # a late job of the older batch
    [job] = waiting.join()
    assert job.is_duplicate
    waiter.close()


def test_handoff_entries_keep_nul_bytes_of_the_record() -> None:
    queue_id, raw_id, attempts, blob = parse_handoff(b'["null","enwiki"]\0abc\x003\0x\0y\0')
    assert (queue_id, raw_id, attempts, blob) == ('["null","enwiki"]', b"abc", 3, b"x\0y\0")


def test_waiters_are_for_one_backends_queues(
    backend: RedisBackend, redis_server: RedisServer
) -> None:
    other = RedisBackend(redis_server.url)
    with pytest.raises(ValueError, match="must all be on this backend"):
        backend.waiter([other.queue("enwiki", "null")])


def test_a_skipped_queue_does_not_reach_us_through_an_old_registration(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    wanted, skipped = backend.queue("enwiki", "null"), backend.queue("enwiki", "other")
    waiter = backend.waiter([wanted, skipped])
    assert isinstance(waiter, HandoffWaiter)
    first = Waiting(waiter, 10)
    wait_until(registered(redis_client, skipped), 5, "the first registrations")
    wanted.push([spec(1)])
    assert len(first.join()) == 1  # served on `wanted`; its member of skipped's set lingers
    assert redis_client.zscore(skipped.keys.waiters, waiter.key) is not None
    waiter_live = waiter.key + ":live"
    second = Waiting(waiter, 10, skip={"other"})
    wait_until(lambda: bool(redis_client.exists(waiter_live)), 5, "the next registration")
    assert redis_client.zscore(skipped.keys.waiters, waiter.key) is None  # left
    skipped.push([JobSpec.create("other", {"n": 3})])
    assert (skipped.sizes().unclaimed, skipped.sizes().claimed) == (1, 0)
    wanted.push([spec(4)])
    assert [j.params["n"] for j in second.join()] == [4]
    assert waiter.close() == []


def test_waiting_and_closing_leaves_no_connection_open(
    backend: RedisBackend, redis_client: redis.Redis
) -> None:
    queue = backend.queue("enwiki", "null")
    backend.queue("enwiki", "null").sizes()  # the backend's own connection, made now
    before = len(redis_client.client_list())
    for _ in range(20):
        waiter = backend.waiter([queue])
        assert waiter.wait(0.01) == []
        assert waiter.close() == []
    assert len(redis_client.client_list()) == before


def test_an_acl_user_without_info_still_gets_handoff(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    redis_client.acl_setuser(
        "pusher", enabled=True, passwords=["+secret"], categories=["+@all", "-@dangerous"],
        keys=["*"], channels=["*"],
    )  # fmt: skip
    try:
        url = redis_server.url.replace("redis://", "redis://pusher:secret@")
        limited = RedisBackend(url)
        queue = limited.queue("enwiki", "null")
        waiter = limited.waiter([queue])
        assert isinstance(waiter, HandoffWaiter)
        waiting = Waiting(waiter, 10)
        wait_until(registered(redis_client, queue), 5, "the registration")
        queue.push([spec(1)])
        assert len(waiting.join()) == 1
        waiter.close()
        limited.close()
    finally:
        redis_client.acl_deluser("pusher")
