"""The in-memory backend: the shared contract, plus what only memory can show (threads,
stored bytes, Redis-exact details another backend need not share)."""

from __future__ import annotations

import logging
import random
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from mwjobs.codec import JobRecord, decode_record, encode_record, new_job_id
from mwjobs.errors import RecordError
from mwjobs.model.data import JobSpec, JobState, QueuedJob
from mwjobs.queues.base import JobQueue, MaintenancePolicy, MaintenanceResult
from mwjobs.queues.memory import MemoryBackend, MemoryQueue
from tests.queues.clock import FakeClock
from tests.queues.contract import (
    DOMAIN,
    TYPE,
    PlantCorrupt,
    PlantGhost,
    QueueContract,
    dedup_job,
    drain,
    job,
    ns,
    root_job,
)

T0 = 1_700_000_000
DAY = 86400
POLICY = MaintenancePolicy(claim_ttl=3600, max_attempts=3)


class TestMemoryContract(QueueContract):
    @pytest.fixture
    def backend(self, clock: FakeClock) -> MemoryBackend:
        return MemoryBackend(clock=clock)

    @pytest.fixture
    def plant_ghost(self, backend: MemoryBackend) -> PlantGhost:
        def plant(queue: JobQueue) -> str:
            job_id = new_job_id()
            backend.plant_ghost(queue.domain, queue.type, job_id)
            return job_id

        return plant

    @pytest.fixture
    def plant_corrupt(self, backend: MemoryBackend) -> PlantCorrupt:
        def plant(queue: JobQueue, raw: bytes) -> str:
            job_id = new_job_id()
            backend.plant_raw(queue.domain, queue.type, job_id, raw)
            return job_id

        return plant


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock: FakeClock) -> MemoryBackend:
    return MemoryBackend(clock=clock)


@pytest.fixture
def queue(backend: MemoryBackend) -> MemoryQueue:
    return backend.queue(DOMAIN, TYPE)


@pytest.fixture
def busy_threads() -> Iterator[None]:
    """Switch threads as often as possible, so an unguarded read-modify-write would race."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Start ``count`` threads at once on ``target(index)``; re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        barrier.wait()
        try:
            target(index)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# -- threads ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("busy_threads")
def test_concurrent_pops_hand_out_every_job_exactly_once(queue: MemoryQueue) -> None:
    for start in range(0, 2000, 100):
        queue.push([job(n) for n in range(start, start + 100)])
    popped: list[list[QueuedJob]] = [[] for _ in range(8)]

    def pop_all(index: int) -> None:
        while batch := queue.pop_many(7):
            popped[index].extend(batch)

    run_threads(8, pop_all)
    everything = [j for batch in popped for j in batch]
    assert sorted(ns(everything)) == list(range(2000))
    assert len({j.id for j in everything}) == 2000
    assert {j.attempts for j in everything} == {1}
    assert queue.sizes().claimed == 2000
    assert queue.sizes().unclaimed == 0


@pytest.mark.usefixtures("busy_threads")
def test_concurrent_duplicate_pushes_keep_one_of_each(queue: MemoryQueue) -> None:
    accepted = [0] * 8

    def push_same_keys(index: int) -> None:
        for _ in range(50):
            for key in range(20):
                accepted[index] += queue.push([dedup_job(index, key=str(key))])

    run_threads(8, push_same_keys)
    assert sum(accepted) == 20
    assert queue.sizes().unclaimed == 20


@pytest.mark.usefixtures("busy_threads")
def test_concurrent_pop_and_ack(queue: MemoryQueue) -> None:
    queue.push([job(n) for n in range(600)])
    acked = [0] * 6

    def work(index: int) -> None:
        while (popped := queue.pop()) is not None:
            acked[index] += queue.ack(popped)

    run_threads(6, work)
    assert sum(acked) == 600
    assert queue.sizes().total == 0


@pytest.mark.usefixtures("busy_threads")
def test_workers_and_chron_in_parallel_ack_every_job_once(
    backend: MemoryBackend, queue: MemoryQueue
) -> None:
    # claim_ttl=0: the chron recycles every claim it sees, racing the workers' pops and acks.
    total = 1000
    queue.push([job(n) for n in range(total)])
    policy = MaintenancePolicy(claim_ttl=0, max_attempts=1_000_000)
    acked = [0] * 5
    workers_done = threading.Semaphore(0)

    def chron() -> None:
        finished = 0
        while finished < 5:
            queue.maintain(policy)
            finished += workers_done.acquire(blocking=False)

    def worker(index: int) -> None:
        try:
            for _ in range(200_000):  # a cap, so a broken backend fails instead of hanging
                if sum(acked) >= total:
                    return
                popped = queue.pop()
                if popped is not None:
                    acked[index] += queue.ack(popped)
            raise AssertionError(f"jobs went missing: {queue.sizes()}, {sum(acked)} acked")
        finally:
            workers_done.release()

    run_threads(6, lambda index: chron() if index == 5 else worker(index))
    assert sum(acked) == total  # a recycled job's stale ack fails; its re-run's ack counts
    assert queue.sizes().total == 0
    check_invariants(backend)


# -- stored data -----------------------------------------------------------------------------


def test_records_are_stored_as_mediawiki_bytes(backend: MemoryBackend, queue: MemoryQueue) -> None:
    spec = dedup_job(1)
    queue.push([spec])
    (listed,) = queue.list_jobs(JobState.UNCLAIMED)
    raw = backend.raw_record(DOMAIN, TYPE, listed.id)
    assert raw == encode_record(spec.to_record(listed.id, T0))
    assert raw.startswith(b'a:8:{s:4:"type";s:4:"null";')
    assert decode_record(raw).sha1 == spec.dedup_hash() == listed.sha1


def test_compression_wraps_large_records_only(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock, compress=True)
    queue = backend.queue(DOMAIN, TYPE)
    big = JobSpec.create(TYPE, {"text": "x" * 5000}, request_id="r")
    queue.push([big, job(1)])
    large, small = queue.list_jobs(JobState.UNCLAIMED)
    large_raw = backend.raw_record(DOMAIN, TYPE, large.id)
    small_raw = backend.raw_record(DOMAIN, TYPE, small.id)
    assert large_raw is not None and large_raw.startswith(b'O:8:"stdClass":2:{')
    assert len(large_raw) < 5000
    assert small_raw is not None and small_raw.startswith(b"a:8:{")
    popped = queue.pop()
    assert popped is not None
    assert popped.params["text"] == "x" * 5000


def test_failed_encoding_stores_nothing(queue: MemoryQueue) -> None:
    bad = JobSpec.create(TYPE, {"n": 2, "bad": object()})  # type: ignore[dict-item]
    with pytest.raises(RecordError):
        queue.push([job(1), bad])
    assert queue.sizes().total == 0
    assert queue.backend.queues_with_jobs() == []


def test_foreign_uuid_is_acked_by_its_storage_id(
    backend: MemoryBackend, queue: MemoryQueue
) -> None:
    record = JobRecord(TYPE, 0, "X", {"n": 1}, 0, "f" * 32, "", T0)
    backend.plant_raw(DOMAIN, TYPE, "a" * 32, encode_record(record))
    popped = queue.pop()
    assert popped is not None
    assert (popped.id, popped.params["n"]) == ("a" * 32, 1)
    assert queue.ack(popped) is True
    assert queue.sizes().total == 0


def test_corrupt_record_is_logged(
    backend: MemoryBackend, queue: MemoryQueue, caplog: pytest.LogCaptureFixture
) -> None:
    backend.plant_raw(DOMAIN, TYPE, "b" * 32, b"not php")
    with caplog.at_level(logging.WARNING, logger="mwjobs.queues.memory"):
        assert queue.list_jobs(JobState.UNCLAIMED) == []
        assert queue.pop() is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all("Could not unserialize null job " + "b" * 32 in m for m in messages)


def test_queue_objects_share_the_backend_state(backend: MemoryBackend) -> None:
    backend.queue(DOMAIN, TYPE).push([job(1)])
    assert ns(drain(backend.queue(DOMAIN, TYPE))) == [1]
    assert backend.queue("dewiki", TYPE).sizes().total == 0


# -- Redis-exact details ---------------------------------------------------------------------


def test_release_time_in_the_past_still_waits_for_maintenance(queue: MemoryQueue) -> None:
    # The push script delays any positive release time (as JobQueueRedis::pushBlobs).
    queue.push([job(1, release_at=T0 - 100)])
    assert queue.pop() is None
    assert queue.maintain(POLICY) == MaintenanceResult(undelayed=1, ready=1)
    assert ns(drain(queue)) == [1]


def test_duplicate_of_a_recycled_job_is_accepted(queue: MemoryQueue, clock: FakeClock) -> None:
    # As in MediaWiki (docs/compatibility.md): recycling does not register the hash again.
    queue.push([dedup_job(1)])
    assert queue.pop() is not None
    clock.advance(3600)
    assert queue.maintain(POLICY).released == 1
    assert queue.push([dedup_job(2)]) == 1
    assert ns(drain(queue)) == [1, 2]


def test_recycled_jobs_latest_claim_first(queue: MemoryQueue, clock: FakeClock) -> None:
    # Recycling RPUSHes stale claims oldest first, so the newest claim ends up next to pop.
    queue.push([job(1), job(2)])
    assert queue.pop() is not None
    clock.advance(10)
    assert queue.pop() is not None
    clock.advance(3600)
    assert queue.maintain(POLICY).released == 2
    assert ns(drain(queue)) == [2, 1]


def test_root_job_timestamps_expire_after_28_days(queue: MemoryQueue, clock: FakeClock) -> None:
    assert queue.deduplicate_root_job(root_job(1, T0 + 60)) is False
    old = QueuedJob.from_record(root_job(2, T0).to_record("c" * 32, T0), DOMAIN, attempts=1)
    clock.now = T0 + 28 * DAY - 1
    assert queue.is_root_job_old_duplicate(old) is True
    clock.now = T0 + 28 * DAY
    assert queue.is_root_job_old_duplicate(old) is False
    assert queue.deduplicate_root_job(root_job(3, T0)) is False


def test_maintaining_an_unknown_queue(backend: MemoryBackend) -> None:
    assert backend.queue("nowiki", TYPE).maintain(POLICY) == MaintenanceResult()
    assert backend.queues_with_jobs() == []


def test_maintain_many_reports_per_queue(backend: MemoryBackend) -> None:
    backend.queue(DOMAIN, TYPE).push([job(1), job(2)])
    results = backend.maintain_many([(TYPE, DOMAIN, POLICY), (TYPE, "dewiki", POLICY)])
    assert results == [MaintenanceResult(ready=2), MaintenanceResult()]


# -- invariants (as JobQueueRedis documents them) under random operations --------------------


def check_invariants(backend: MemoryBackend) -> None:
    for store in backend._stores.values():
        places = [set(store.unclaimed), set(store.claimed), set(store.abandoned)]
        places.append(set(store.delayed))
        everywhere = [i for place in places for i in place]
        assert len(everywhere) == len(set(everywhere)), "an ID in two states"
        assert len(store.unclaimed) == len(places[0]), "an ID twice in the line"
        assert set(store.data) == set(everywhere), "data without a state or a state without data"
        assert set(store.claimed) | set(store.abandoned) <= set(store.attempts)
        assert {v: k for k, v in store.id_by_sha1.items()} == store.sha1_by_id
        assert set(store.sha1_by_id) <= places[0] | places[3], "a hash kept past its pop"


@pytest.mark.parametrize("seed", range(6))
def test_random_operations_keep_the_invariants(seed: int, clock: FakeClock) -> None:
    rng = random.Random(seed)
    backend = MemoryBackend(clock=clock)
    queue = backend.queue(DOMAIN, TYPE)
    held: list[QueuedJob] = []
    policy = MaintenancePolicy(claim_ttl=50, max_attempts=2, abandoned_retention=400, batch=3)
    for step in range(400):
        action = rng.randrange(5)
        if action == 0:
            specs = [dedup_job(step, key=str(rng.randrange(8))) for _ in range(rng.randrange(4))]
            specs.append(job(step, release_at=clock.now + rng.randrange(-5, 60)))
            queue.push(specs)
        elif action == 1:
            held.extend(queue.pop_many(rng.randrange(1, 4)))
        elif action == 2 and held:
            queue.ack(held.pop(rng.randrange(len(held))))
        elif action == 3:
            queue.maintain(policy)
        else:
            clock.advance(rng.randrange(1, 40))
        check_invariants(backend)
    cleanup = MaintenancePolicy(claim_ttl=50, max_attempts=2, abandoned_retention=400)
    for _ in range(4):  # let everything run out of attempts and be pruned
        drain(queue)
        clock.advance(1000)
        queue.maintain(cleanup)
    check_invariants(backend)
    assert queue.sizes().total == 0
    assert backend.queues_with_jobs() == []
