"""The one behaviour suite every queue backend must pass (huey's ``StorageTests`` shape).

A backend's test module subclasses :class:`QueueContract` and provides two fixtures:

* ``backend``: a fresh, empty :class:`QueueBackend` built with ``clock=clock`` (the
  :class:`FakeClock` fixture defined here), so tests move time instead of sleeping;
* ``plant_corrupt``: a callable ``(queue, raw: bytes) -> job ID`` that puts ``raw`` in as
  the record of a new unclaimed job, behind the jobs already queued (as a push would);
* ``plant_ghost``: a callable ``(queue) -> job ID`` that queues an ID with no record at all
  (what old MediaWiki acks could leave behind), behind the jobs already queued.

The semantics are MediaWiki's JobQueueRedis (``includes/jobqueue/JobQueueRedis.php``) with the
fixes mwjobs makes (docs/compatibility.md: abandoned jobs keep a queue listed until pruned; a
corrupt record never blocks a queue). Every test asserts data the backend hands back through
the public API.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from mwjobs.codec import PhpKey, PhpValue
from mwjobs.model.data import JobSpec, JobState, QueuedJob, new_root_job_params
from mwjobs.queues.base import (
    JobQueue,
    MaintenancePolicy,
    MaintenanceResult,
    QueueBackend,
    QueueSizes,
)
from tests.queues.clock import START, FakeClock

__all__ = ["DOMAIN", "TYPE", "EventRecorder", "PlantCorrupt", "PlantGhost", "QueueContract"]

PlantCorrupt = Callable[[JobQueue, bytes], str]
PlantGhost = Callable[[JobQueue], str]

DOMAIN = "enwiki"
TYPE = "null"
T0 = int(START)
DAY = 86400
POLICY = MaintenancePolicy(claim_ttl=3600, max_attempts=3)
ONE_TRY = MaintenancePolicy(claim_ttl=3600, max_attempts=1)
# Undecodable ``h-data`` values: broken syntax, a scalar, an array missing most fields.
CORRUPT_RECORDS = [
    b"a:2:{s:4:",
    b"i:5;",
    b'a:1:{s:4:"type";s:4:"null";}',
]


def job(n: int, *, release_at: float | None = None) -> JobSpec:
    """A plain job told apart by its ``n`` param."""
    return JobSpec.create(TYPE, {"n": n}, release_at=release_at, request_id="r")


def dedup_job(n: int, key: str = "A", *, release_at: float | None = None) -> JobSpec:
    """A de-duplicated job: every ``dedup_job(_, key)`` has the same hash, whatever ``n``."""
    return JobSpec.create(
        TYPE,
        {"key": key, "n": n},
        release_at=release_at,
        remove_duplicates=True,
        ignore_params=("n",),
        request_id="r",
    )


def root_job(n: int, at: float, *, is_self: bool = True) -> JobSpec:
    """A job of the root job "Template:X" started at ``at``; a child lacks rootJobIsSelf."""
    params: dict[PhpKey, PhpValue] = {"n": n}
    params.update(new_root_job_params("Template:X", now=at))
    if not is_self:
        del params["rootJobIsSelf"]
    return JobSpec.create(TYPE, params, request_id="r")


def ns(jobs: Sequence[QueuedJob]) -> list[int]:
    """The ``n`` params of ``jobs``, in order."""
    numbers = []
    for popped in jobs:
        n = popped.params["n"]
        assert isinstance(n, int), f"job {popped.id} lost its n param: {dict(popped.params)}"
        numbers.append(n)
    return numbers


def drain(queue: JobQueue) -> list[QueuedJob]:
    """Pop until the queue has no ready job."""
    jobs = []
    while (popped := queue.pop()) is not None:
        jobs.append(popped)
    return jobs


class EventRecorder:
    """An event sink that keeps every (event, type, count) it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, event: str, job_type: str, count: int) -> None:
        self.calls.append((event, job_type, count))

    def totals(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for event, _, count in self.calls:
            totals[event] += count
        return totals


class QueueContract:
    """Mix-in of contract tests; subclasses provide ``backend`` and ``plant_corrupt``."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock(START)

    @pytest.fixture
    def queue(self, backend: QueueBackend) -> JobQueue:
        return backend.queue(DOMAIN, TYPE)

    @pytest.fixture
    def events(self, backend: QueueBackend) -> EventRecorder:
        # Installed on the live backend, so subclasses need not know about events.
        recorder = EventRecorder()
        backend._on_event = recorder
        return recorder

    # -- push and pop order ----------------------------------------------------------------

    def test_fifo_order(self, queue: JobQueue) -> None:
        queue.push([job(1), job(2)])
        queue.push([job(3)])
        popped = drain(queue)
        assert ns(popped) == [1, 2, 3]
        assert [j.state for j in popped] == [JobState.CLAIMED] * 3
        assert queue.pop() is None

    def test_popped_job_carries_its_record(self, queue: JobQueue, clock: FakeClock) -> None:
        spec = JobSpec.create(TYPE, {"n": 1}, namespace=4, title="Main_Page", request_id="req")
        queue.push([spec])
        clock.advance(30)
        popped = queue.pop()
        assert popped is not None
        assert (popped.type, popped.domain) == (TYPE, DOMAIN)
        assert dict(popped.params) == dict(spec.params)
        assert (popped.namespace, popped.title, popped.request_id) == (4, "Main_Page", "req")
        assert popped.enqueue_timestamp == T0
        assert popped.release_timestamp is None
        assert popped.is_duplicate is False
        assert len(popped.id) == 32

    def test_push_returns_number_actually_added(self, queue: JobQueue) -> None:
        assert queue.push([]) == 0
        assert queue.push([dedup_job(1), job(2)]) == 2
        assert queue.push([dedup_job(3), job(4), job(5)]) == 2
        assert queue.sizes().unclaimed == 4

    def test_push_of_another_type_is_refused(self, queue: JobQueue) -> None:
        with pytest.raises(ValueError, match="refreshLinks"):
            queue.push([job(1), JobSpec.create("refreshLinks", {})])
        assert queue.sizes().total == 0

    def test_pop_many_claims_up_to_n_in_fifo_order(self, queue: JobQueue) -> None:
        queue.push([job(n) for n in range(5)])
        assert queue.pop_many(0) == []
        first = queue.pop_many(3)
        assert ns(first) == [0, 1, 2]
        assert [j.attempts for j in first] == [1, 1, 1]
        assert ns(queue.pop_many(10)) == [3, 4]
        assert queue.pop_many(10) == []
        assert queue.sizes().claimed == 5

    # -- de-duplication --------------------------------------------------------------------

    def test_duplicate_of_unclaimed_job_is_dropped(self, queue: JobQueue) -> None:
        assert queue.push([dedup_job(1)]) == 1
        assert queue.push([dedup_job(2)]) == 0
        assert queue.push([dedup_job(3, key="B")]) == 1
        assert ns(drain(queue)) == [1, 3]

    def test_duplicate_of_delayed_job_is_dropped_even_if_due_earlier(
        self, queue: JobQueue, clock: FakeClock
    ) -> None:
        assert queue.push([dedup_job(1, release_at=T0 + 100)]) == 1
        assert queue.push([dedup_job(2, release_at=T0 + 10)]) == 0
        assert queue.push([dedup_job(3)]) == 0
        clock.advance(10)
        assert queue.maintain(POLICY).undelayed == 0
        clock.advance(90)
        assert queue.maintain(POLICY).undelayed == 1
        assert ns(drain(queue)) == [1]

    def test_duplicate_is_accepted_while_the_original_is_claimed(self, queue: JobQueue) -> None:
        queue.push([dedup_job(1)])
        original = queue.pop()
        assert original is not None
        assert queue.push([dedup_job(2)]) == 1
        assert queue.sizes().unclaimed == 1
        assert queue.sizes().claimed == 1
        second = queue.pop()
        assert second is not None
        assert second.sha1 == original.sha1 != ""
        assert second.id != original.id

    def test_duplicates_within_one_batch(self, queue: JobQueue) -> None:
        # doBatchPush keys the batch by hash: the later duplicate replaces the earlier
        # one's record but keeps its place in the batch.
        assert queue.push([dedup_job(1), job(2), dedup_job(3), job(4)]) == 3
        assert ns(drain(queue)) == [3, 2, 4]

    # -- delayed jobs ------------------------------------------------------------------------

    def test_delayed_job_is_invisible_until_maintained(
        self, queue: JobQueue, clock: FakeClock
    ) -> None:
        queue.push([job(1, release_at=T0 + 60)])
        assert queue.sizes().delayed == 1
        clock.advance(59)
        assert queue.maintain(POLICY) == MaintenanceResult(ready=0)
        assert queue.pop() is None
        clock.advance(1)
        assert queue.pop() is None  # due, but only maintenance makes it ready
        assert queue.maintain(POLICY) == MaintenanceResult(undelayed=1, ready=1)
        popped = queue.pop()
        assert popped is not None
        assert (popped.params["n"], popped.release_timestamp) == (1, T0 + 60)
        assert popped.ready_timestamp == T0 + 60

    def test_released_job_queues_behind_ready_jobs(
        self, queue: JobQueue, clock: FakeClock
    ) -> None:
        queue.push([job(1, release_at=T0 + 60)])
        queue.push([job(2), job(3)])
        clock.advance(120)
        assert queue.maintain(POLICY) == MaintenanceResult(undelayed=1, ready=3)
        assert ns(drain(queue)) == [2, 3, 1]

    def test_release_order_follows_release_time(self, queue: JobQueue, clock: FakeClock) -> None:
        queue.push([job(1, release_at=T0 + 30), job(2, release_at=T0 + 10)])
        queue.push([job(3, release_at=T0 + 20)])
        clock.advance(60)
        assert queue.maintain(POLICY).undelayed == 3
        assert ns(drain(queue)) == [2, 3, 1]

    # -- claims: attempts, recycling, abandoning, pruning -------------------------------------

    def test_attempts_count_every_pop(self, queue: JobQueue, clock: FakeClock) -> None:
        queue.push([job(1)])
        attempts = []
        for _ in range(3):
            popped = queue.pop()
            assert popped is not None
            attempts.append(popped.attempts)
            clock.advance(3600)
            queue.maintain(POLICY)
        assert attempts == [1, 2, 3]

    def test_claim_is_recycled_only_after_the_claim_ttl(
        self, queue: JobQueue, clock: FakeClock
    ) -> None:
        queue.push([job(1)])
        first = queue.pop()
        assert first is not None
        clock.advance(3599)
        assert queue.maintain(POLICY).released == 0
        clock.advance(1)
        assert queue.maintain(POLICY) == MaintenanceResult(released=1, ready=1)
        again = queue.pop()
        assert again is not None
        assert (again.id, again.attempts) == (first.id, 2)

    def test_recycled_job_is_popped_before_older_queued_jobs(
        self, queue: JobQueue, clock: FakeClock
    ) -> None:
        queue.push([job(1)])
        assert queue.pop() is not None
        queue.push([job(2), job(3)])
        clock.advance(3600)
        assert queue.maintain(POLICY).released == 1
        assert ns(drain(queue)) == [1, 2, 3]

    def test_job_out_of_attempts_is_abandoned(self, queue: JobQueue, clock: FakeClock) -> None:
        policy = MaintenancePolicy(claim_ttl=3600, max_attempts=2)
        queue.push([job(1)])
        for _ in range(2):
            assert queue.pop() is not None
            clock.advance(3600)
            last = queue.maintain(policy)
        assert last == MaintenanceResult(abandoned=1)
        assert queue.pop() is None
        assert queue.sizes().abandoned == 1
        (abandoned,) = queue.list_jobs(JobState.ABANDONED)
        assert (abandoned.params["n"], abandoned.attempts) == (1, 2)
        assert abandoned.state is JobState.ABANDONED

    def test_abandoned_job_is_pruned_after_retention_from_its_last_claim(
        self, queue: JobQueue, clock: FakeClock
    ) -> None:
        queue.push([job(1)])
        assert queue.pop() is not None  # the last claim, at T0
        clock.now = T0 + 5000  # abandoned well after the claim
        assert queue.maintain(ONE_TRY).abandoned == 1
        clock.now = T0 + 7 * DAY - 1
        assert queue.maintain(ONE_TRY).pruned == 0
        clock.now = T0 + 7 * DAY
        assert queue.maintain(ONE_TRY).pruned == 1
        assert queue.sizes().total == 0
        assert queue.list_jobs(JobState.ABANDONED) == []

    # -- ack -------------------------------------------------------------------------------

    def test_ack_deletes_once(self, queue: JobQueue) -> None:
        queue.push([job(1), job(2)])
        popped = queue.pop()
        assert popped is not None
        assert queue.ack(popped) is True
        assert queue.ack(popped) is False
        assert queue.sizes() == QueueSizes(unclaimed=1, claimed=0, abandoned=0, delayed=0)

    def test_ack_many_reports_each_job(self, queue: JobQueue) -> None:
        queue.push([job(1), job(2), job(3)])
        a, b, c = queue.pop_many(3)
        assert queue.ack(b) is True
        assert queue.ack_many([a, b, c]) == [True, False, True]
        assert queue.sizes().total == 0

    def test_ack_after_recycle_fails_and_the_job_runs_again(
        self, queue: JobQueue, clock: FakeClock
    ) -> None:
        queue.push([job(1)])
        slow = queue.pop()
        assert slow is not None
        clock.advance(3600)
        assert queue.maintain(POLICY).released == 1
        assert queue.ack(slow) is False
        again = queue.pop()
        assert again is not None
        assert (again.id, again.attempts) == (slow.id, 2)

    def test_ack_of_abandoned_job_fails(self, queue: JobQueue, clock: FakeClock) -> None:
        queue.push([job(1)])
        popped = queue.pop()
        assert popped is not None
        clock.advance(3600)
        assert queue.maintain(ONE_TRY).abandoned == 1
        assert queue.ack(popped) is False
        assert queue.sizes().abandoned == 1

    # -- root jobs -------------------------------------------------------------------------

    def test_newer_root_job_supersedes_older_batch(
        self, queue: JobQueue, clock: FakeClock, events: EventRecorder
    ) -> None:
        queue.push([root_job(1, T0), root_job(2, T0)])
        queue.push([root_job(3, T0 + 60)])
        popped = drain(queue)
        assert ns(popped) == [1, 2, 3]
        assert [j.is_duplicate for j in popped] == [True, True, False]
        assert events.totals()["dupe_pops"] == 2
        assert all(queue.ack(j) for j in popped)  # a duplicate is acked like any job

    def test_equal_root_timestamps_do_not_supersede(self, queue: JobQueue) -> None:
        queue.push([root_job(1, T0)])
        queue.push([root_job(2, T0)])
        assert [j.is_duplicate for j in drain(queue)] == [False, False]

    def test_children_of_an_old_root_are_duplicates(self, queue: JobQueue) -> None:
        # Children carry the root params without rootJobIsSelf: they never register.
        queue.push([root_job(1, T0, is_self=False)])
        queue.push([root_job(2, T0 - 60, is_self=False)])
        assert [j.is_duplicate for j in drain(queue)] == [False, False]
        assert queue.deduplicate_root_job(root_job(0, T0 + 60)) is False
        queue.push([root_job(3, T0, is_self=False)])
        (child,) = drain(queue)
        assert child.is_duplicate is True

    def test_deduplicate_root_job_reports_newer_or_equal(self, queue: JobQueue) -> None:
        assert queue.deduplicate_root_job(root_job(1, T0)) is False
        assert queue.deduplicate_root_job(root_job(1, T0)) is True
        assert queue.deduplicate_root_job(root_job(1, T0 - 1)) is True
        assert queue.deduplicate_root_job(root_job(1, T0 + 1)) is False
        assert queue.deduplicate_root_job(root_job(1, T0)) is True  # T0+1 is kept
        with pytest.raises(ValueError):
            queue.deduplicate_root_job(job(1))

    def test_root_jobs_are_per_queue(self, backend: QueueBackend, queue: JobQueue) -> None:
        other = backend.queue("dewiki", TYPE)
        queue.push([root_job(1, T0)])
        other.push([root_job(2, T0)])
        queue.push([root_job(3, T0 + 60)])
        assert [j.is_duplicate for j in drain(other)] == [False]
        assert [j.is_duplicate for j in drain(queue)] == [True, False]

    # -- listings and sizes ----------------------------------------------------------------

    def test_listing_unclaimed_in_pop_order(self, queue: JobQueue, clock: FakeClock) -> None:
        queue.push([job(1)])
        assert queue.pop() is not None
        queue.push([job(2), job(3)])
        clock.advance(3600)
        queue.maintain(POLICY)
        listed = queue.list_jobs(JobState.UNCLAIMED)
        assert ns(listed) == [1, 2, 3]
        assert [j.attempts for j in listed] == [1, 0, 0]
        assert {j.state for j in listed} == {JobState.UNCLAIMED}
        assert ns(queue.list_jobs(JobState.UNCLAIMED, limit=2)) == [1, 2]
        assert ns(drain(queue)) == [1, 2, 3]

    def test_listing_delayed_by_release_time(self, queue: JobQueue) -> None:
        queue.push([job(1, release_at=T0 + 30), job(2, release_at=T0 + 10)])
        queue.push([job(3, release_at=T0 + 20)])
        listed = queue.list_jobs(JobState.DELAYED)
        assert ns(listed) == [2, 3, 1]
        assert [j.release_timestamp for j in listed] == [T0 + 10, T0 + 20, T0 + 30]
        assert {j.state for j in listed} == {JobState.DELAYED}
        assert queue.list_jobs(JobState.UNCLAIMED) == []

    def test_listing_claimed_by_claim_time_with_attempts(
        self, queue: JobQueue, clock: FakeClock
    ) -> None:
        queue.push([job(1), job(2)])
        assert queue.pop() is not None  # 1, claimed at T0
        clock.advance(3600)
        queue.maintain(POLICY)  # 1 recycled to the front
        clock.advance(10)
        assert ns(queue.pop_many(2)) == [1, 2]  # both claimed at T0+3610
        clock.advance(3600)
        queue.push([job(3)])
        assert queue.pop() is not None  # 3 claimed last
        listed = queue.list_jobs(JobState.CLAIMED)
        assert sorted(ns(listed[:2])) == [1, 2]  # same second: any order
        assert ns(listed[2:]) == [3]
        assert {j.params["n"]: j.attempts for j in listed} == {1: 2, 2: 1, 3: 1}
        assert {j.state for j in listed} == {JobState.CLAIMED}
        assert len(queue.list_jobs(JobState.CLAIMED, limit=1)) == 1

    def test_listing_abandoned(self, queue: JobQueue, clock: FakeClock) -> None:
        queue.push([job(1)])
        assert queue.pop() is not None
        clock.advance(100)
        queue.push([job(2)])
        assert queue.pop() is not None
        clock.advance(3600)
        assert queue.maintain(ONE_TRY).abandoned == 2
        listed = queue.list_jobs(JobState.ABANDONED)
        assert ns(listed) == [1, 2]
        assert [j.attempts for j in listed] == [1, 1]
        assert queue.list_jobs(JobState.CLAIMED) == []

    def test_sizes_count_each_state(self, queue: JobQueue, clock: FakeClock) -> None:
        queue.push([job(1), job(2)])
        assert queue.pop() is not None
        clock.advance(3600)
        assert queue.maintain(ONE_TRY).abandoned == 1
        queue.push([job(3), job(4), job(5, release_at=T0 + 9999)])
        assert queue.pop() is not None
        sizes = queue.sizes()
        assert (sizes.unclaimed, sizes.claimed, sizes.abandoned, sizes.delayed) == (2, 1, 1, 1)
        assert sizes.total == 5

    def test_empty_queue(self, queue: JobQueue) -> None:
        assert queue.sizes().total == 0
        assert queue.pop() is None
        for state in JobState:
            assert queue.list_jobs(state) == []
        assert queue.maintain(POLICY) == MaintenanceResult()

    # -- delete ----------------------------------------------------------------------------

    def test_delete_removes_every_state(
        self, backend: QueueBackend, queue: JobQueue, clock: FakeClock
    ) -> None:
        other = backend.queue(DOMAIN, "refreshLinks")
        other.push([JobSpec.create("refreshLinks", {"n": 9})])
        queue.push([job(1)])
        assert queue.pop() is not None
        clock.advance(3600)
        queue.maintain(ONE_TRY)  # 1 abandoned
        queue.push([dedup_job(2), job(3), job(4, release_at=T0 + 9999)])
        claimed = queue.pop()
        assert claimed is not None
        assert queue.sizes().total == 4
        queue.delete()
        assert queue.sizes().total == 0
        assert all(queue.list_jobs(state) == [] for state in JobState)
        assert queue.ack(claimed) is False
        assert (TYPE, DOMAIN) not in backend.queues_with_jobs()
        assert queue.push([dedup_job(5)]) == 1  # its dedup hash went too
        assert other.sizes().unclaimed == 1

    # -- queues with jobs --------------------------------------------------------------------

    def test_queues_with_jobs_lists_pushed_queues(self, backend: QueueBackend) -> None:
        assert backend.queues_with_jobs() == []
        backend.queue(DOMAIN, TYPE).push([job(1)])
        backend.queue("dewiki", "refreshLinks").push([JobSpec.create("refreshLinks", {})])
        backend.queue("frwiki", TYPE).push([job(2, release_at=T0 + 60)])
        assert sorted(backend.queues_with_jobs()) == [
            ("null", "enwiki"),
            ("null", "frwiki"),
            ("refreshLinks", "dewiki"),
        ]

    def test_emptied_queue_is_dropped_by_maintain(
        self, backend: QueueBackend, queue: JobQueue
    ) -> None:
        queue.push([job(1)])
        popped = queue.pop()
        assert popped is not None
        assert queue.maintain(POLICY) == MaintenanceResult()
        assert backend.queues_with_jobs() == [(TYPE, DOMAIN)]  # still claimed
        assert queue.ack(popped) is True
        assert backend.queues_with_jobs() == [(TYPE, DOMAIN)]  # until maintenance looks
        assert queue.maintain(POLICY) == MaintenanceResult()
        assert backend.queues_with_jobs() == []

    def test_queue_with_only_abandoned_jobs_stays_listed_until_pruned(
        self, backend: QueueBackend, queue: JobQueue, clock: FakeClock
    ) -> None:
        # A fix (docs/compatibility.md): MediaWiki's chron forgets such queues, leaking the jobs.
        queue.push([job(1)])
        assert queue.pop() is not None
        clock.advance(3600)
        assert queue.maintain(ONE_TRY).abandoned == 1
        assert backend.queues_with_jobs() == [(TYPE, DOMAIN)]
        clock.now = T0 + 7 * DAY
        assert queue.maintain(ONE_TRY).pruned == 1
        assert backend.queues_with_jobs() == []

    # -- maintenance -------------------------------------------------------------------------

    def test_maintain_counts_every_phase(self, queue: JobQueue, clock: FakeClock) -> None:
        policy = MaintenancePolicy(claim_ttl=3600, max_attempts=2)
        final = T0 + 3600 + 7 * DAY
        queue.push([job(0)])  # "pruned": abandoned with its last claim at T0+3600
        assert queue.pop() is not None
        clock.advance(3600)
        assert queue.maintain(policy).released == 1
        assert queue.pop() is not None
        clock.advance(3600)
        assert queue.maintain(policy).abandoned == 1
        clock.now = final - 7200
        queue.push([job(1)])  # "abandoned": second claim due at the end
        assert queue.pop() is not None
        clock.now = final - 3600
        assert queue.maintain(policy) == MaintenanceResult(released=1, ready=1)
        assert queue.pop() is not None
        queue.push([job(2)])  # "released": first claim due at the end
        assert queue.pop() is not None
        queue.push([job(3, release_at=final), job(4)])  # "undelayed" and ready
        clock.now = final
        assert queue.maintain(policy) == MaintenanceResult(
            released=1, abandoned=1, pruned=1, undelayed=1, ready=3
        )
        assert ns(drain(queue)) == [2, 4, 3]
        assert ns(queue.list_jobs(JobState.ABANDONED)) == [1]

    def test_maintain_takes_time_from_its_argument(self, queue: JobQueue) -> None:
        queue.push([job(1, release_at=T0 + 100)])
        assert queue.maintain(POLICY, now=T0 + 99).undelayed == 0
        assert queue.maintain(POLICY, now=T0 + 100).undelayed == 1

    def test_maintain_recycles_at_most_a_batch(self, queue: JobQueue, clock: FakeClock) -> None:
        policy = MaintenancePolicy(claim_ttl=3600, max_attempts=3, batch=2)
        queue.push([job(n) for n in range(5)])
        assert len(queue.pop_many(5)) == 5
        clock.advance(3600)
        assert [queue.maintain(policy).released for _ in range(4)] == [2, 2, 1, 0]
        assert queue.sizes().unclaimed == 5

    def test_maintain_abandons_at_most_a_batch(self, queue: JobQueue, clock: FakeClock) -> None:
        policy = MaintenancePolicy(claim_ttl=3600, max_attempts=1, batch=2)
        queue.push([job(n) for n in range(3)])
        assert len(queue.pop_many(3)) == 3
        clock.advance(3600)
        assert [queue.maintain(policy).abandoned for _ in range(3)] == [2, 1, 0]

    def test_maintain_prunes_at_most_a_batch(self, queue: JobQueue, clock: FakeClock) -> None:
        policy = MaintenancePolicy(claim_ttl=3600, max_attempts=1, batch=2)
        queue.push([job(n) for n in range(3)])
        assert len(queue.pop_many(3)) == 3
        clock.advance(3600)
        queue.maintain(policy)
        queue.maintain(policy)
        clock.now = T0 + 7 * DAY
        assert [queue.maintain(policy).pruned for _ in range(3)] == [2, 1, 0]
        assert queue.sizes().total == 0

    def test_maintain_releases_at_most_a_batch_earliest_first(
        self, queue: JobQueue, clock: FakeClock
    ) -> None:
        policy = MaintenancePolicy(batch=2)
        queue.push([job(n, release_at=T0 + 10 - n) for n in range(5)])
        clock.advance(60)
        assert queue.maintain(policy) == MaintenanceResult(undelayed=2, ready=2)
        assert ns(queue.list_jobs(JobState.UNCLAIMED)) == [4, 3]
        assert [queue.maintain(policy).undelayed for _ in range(2)] == [2, 1]
        assert ns(drain(queue)) == [4, 3, 2, 1, 0]

    # -- damaged data ----------------------------------------------------------------------

    @pytest.mark.parametrize("raw", CORRUPT_RECORDS)
    def test_corrupt_record_is_set_aside_and_never_blocks(
        self,
        queue: JobQueue,
        plant_corrupt: PlantCorrupt,
        events: EventRecorder,
        raw: bytes,
    ) -> None:
        queue.push([job(1)])
        bad_id = plant_corrupt(queue, raw)
        queue.push([job(2)])
        assert queue.sizes().unclaimed == 3
        assert ns(queue.list_jobs(JobState.UNCLAIMED)) == [1, 2]  # skipped, not raised
        popped = drain(queue)
        assert ns(popped) == [1, 2]
        assert bad_id not in {j.id for j in popped}
        assert queue.sizes().abandoned == 1
        assert queue.list_jobs(JobState.ABANDONED) == []
        assert events.totals()["corrupt"] == 1
        assert events.totals()["pops"] == 2

    def test_corrupt_records_do_not_shorten_pop_many(
        self, queue: JobQueue, plant_corrupt: PlantCorrupt
    ) -> None:
        plant_corrupt(queue, b"garbage")
        queue.push([job(1)])
        plant_corrupt(queue, b"i:1;")
        queue.push([job(2), job(3)])
        assert ns(queue.pop_many(3)) == [1, 2, 3]
        assert queue.sizes().abandoned == 2

    def test_ghost_id_is_dropped_and_never_ends_a_pop(
        self, queue: JobQueue, plant_ghost: PlantGhost, clock: FakeClock
    ) -> None:
        queue.push([job(1)])
        ghost = plant_ghost(queue)
        queue.push([job(2)])
        popped = queue.pop_many(5)
        assert ns(popped) == [1, 2]
        assert ghost not in {j.id for j in popped}
        # Dropped, not left claimed (a fix, see docs/compatibility.md): only the real jobs remain.
        assert queue.sizes() == QueueSizes(unclaimed=0, claimed=2, abandoned=0, delayed=0)
        queue.ack_many(popped)
        clock.advance(3600 + 1)
        assert queue.maintain(POLICY) == MaintenanceResult()
        assert queue.sizes().total == 0

    def test_corrupt_record_is_pruned_after_retention(
        self, queue: JobQueue, plant_corrupt: PlantCorrupt, clock: FakeClock
    ) -> None:
        plant_corrupt(queue, b"garbage")
        assert queue.pop() is None
        clock.now = T0 + 7 * DAY
        assert queue.maintain(POLICY) == MaintenanceResult(pruned=1)
        assert queue.sizes().total == 0

    # -- events ----------------------------------------------------------------------------

    def test_events(self, queue: JobQueue, clock: FakeClock, events: EventRecorder) -> None:
        queue.push([dedup_job(1)])
        queue.push([dedup_job(2), job(3), job(4)])
        a, b, _ = queue.pop_many(5)
        queue.ack_many([a, b])
        queue.ack(a)
        clock.advance(3600)
        queue.maintain(POLICY)
        totals = events.totals()
        assert {k: totals[k] for k in ("inserts", "inserts_actual", "dupe_inserts")} == {
            "inserts": 4,
            "inserts_actual": 3,
            "dupe_inserts": 1,
        }
        assert (totals["pops"], totals["acks"], totals["recycles"]) == (3, 2, 1)
        assert totals["dupe_pops"] == 0
        assert {job_type for _, job_type, _ in events.calls} == {TYPE}
        assert all(count > 0 for _, _, count in events.calls)

    # -- the push/pop/chron scenario as the PHP scripts play it on Redis --------------------

    def test_spec_redis_scenario(
        self, backend: QueueBackend, queue: JobQueue, clock: FakeClock
    ) -> None:
        now = T0
        clock.now = now - 4000
        pushed = queue.push(
            [dedup_job(1), dedup_job(2), job(3), job(4, release_at=now + 100)]
        )
        assert pushed == 3  # the second "A" is a duplicate
        assert queue.sizes().delayed == 1
        assert ns(queue.list_jobs(JobState.UNCLAIMED)) == [2, 3]  # "id1" holds job 2's data
        first = queue.pop()
        assert first is not None
        assert first.params["n"] == 2
        assert ns(queue.list_jobs(JobState.UNCLAIMED)) == [3]
        assert queue.maintain(POLICY, now=now) == MaintenanceResult(1, 0, 0, 0, 2)
        assert ns(queue.list_jobs(JobState.UNCLAIMED)) == [2, 3]
        assert queue.maintain(POLICY, now=now + 200) == MaintenanceResult(0, 0, 0, 1, 3)
        assert ns(queue.list_jobs(JobState.UNCLAIMED)) == [2, 3, 4]
        assert backend.queues_with_jobs() == [(TYPE, DOMAIN)]
