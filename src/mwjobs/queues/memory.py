"""A real in-memory backend with JobQueueRedis's exact semantics (its Lua scripts).

Each queue keeps the same structures as JobQueueRedis's eight per-queue keys, and every
operation follows the matching Lua script step by step, so this backend can stand in for
Redis in tests of the layers above and in embedded use. Records are stored encoded (PHP
serialize bytes), so the codec path runs and a corrupt record is possible, as on Redis.

Differences from Redis, on purpose:

* A queue stays in :meth:`MemoryBackend.queues_with_jobs` while it holds abandoned jobs,
  so they are pruned (the PHP chron's script drops such queues and leaks them).
* A pop meets a corrupt record or a ghost ID (an ID without data) and goes on with the next job
  instead of stopping the batch (docs/compatibility.md, "Ghost IDs do not end a pop"); corrupt
  records are set aside as abandoned, ghost IDs are dropped (both as the Redis backend does).

All state sits behind one lock, so one backend can be shared by threads.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import threading
import time
from collections import deque

from mwjobs.codec import ROOT_JOB_TTL, decode_record, encode_record, new_job_id
from mwjobs.errors import RecordError
from mwjobs.model.data import JobSpec, JobState, QueuedJob
from mwjobs.queues.backends import BackendLocation
from mwjobs.queues.base import (
    Clock,
    EventSink,
    JobQueue,
    MaintenancePolicy,
    MaintenanceResult,
    QueueBackend,
    QueueSizes,
)

__all__ = ["MemoryBackend", "MemoryQueue"]

log = logging.getLogger(__name__)


def _range_by_score(zset: dict[str, int], max_score: int, limit: int | None) -> list[str]:
    """``ZRANGEBYSCORE zset -inf max_score LIMIT 0 limit``: members by (score, member)."""
    due = ((score, member) for member, score in zset.items() if score <= max_score)
    picked = sorted(due) if limit is None else heapq.nsmallest(max(limit, 0), due)
    return [member for _, member in picked]


@dataclasses.dataclass(frozen=True)
class _Item:
    """One job of a push batch, already encoded."""

    id: str
    sha1: str
    release: int
    blob: bytes


@dataclasses.dataclass
class _Store:
    """One queue's structures, each standing for the Redis key named in its comment."""

    # l-unclaimed: appendleft = LPUSH (back of the line), pop() = RPOP (next to run).
    unclaimed: deque[str] = dataclasses.field(default_factory=deque)
    claimed: dict[str, int] = dataclasses.field(default_factory=dict)  # z-claimed: last claim
    abandoned: dict[str, int] = dataclasses.field(default_factory=dict)  # z-abandoned: ditto
    delayed: dict[str, int] = dataclasses.field(default_factory=dict)  # z-delayed: release
    id_by_sha1: dict[str, str] = dataclasses.field(default_factory=dict)  # h-idBySha1
    sha1_by_id: dict[str, str] = dataclasses.field(default_factory=dict)  # h-sha1ById
    attempts: dict[str, int] = dataclasses.field(default_factory=dict)  # h-attempts
    data: dict[str, bytes] = dataclasses.field(default_factory=dict)  # h-data

    def add(self, item: _Item) -> bool:
        """The push script for one job: False if an unclaimed/delayed duplicate exists."""
        if item.sha1 and item.sha1 in self.id_by_sha1:
            return False
        if item.release > 0:
            self.delayed[item.id] = item.release
        else:
            self.unclaimed.appendleft(item.id)
        if item.sha1:
            self.sha1_by_id[item.id] = item.sha1
            self.id_by_sha1[item.sha1] = item.id
        self.data[item.id] = item.blob
        return True

    def claim(self, now: int) -> str:
        """The pop script: take the next unclaimed ID, free its dedup hash, count the try."""
        job_id = self.unclaimed.pop()
        sha1 = self.sha1_by_id.pop(job_id, None)
        if sha1 is not None:
            # A claimed job no longer blocks new duplicates (MW's pop script).
            self.id_by_sha1.pop(sha1, None)
        self.claimed[job_id] = now
        self.attempts[job_id] = self.attempts.get(job_id, 0) + 1
        return job_id

    def drop_ghost(self, job_id: str) -> None:
        """Forget a just-claimed ID that has no record (the Redis pop script's ghost rule)."""
        self.claimed.pop(job_id, None)
        self.attempts.pop(job_id, None)

    def set_aside(self, job_id: str) -> None:
        """Move a claimed job with an unreadable record to abandoned, keeping its claim time."""
        self.abandoned[job_id] = self.claimed.pop(job_id)

    def ack(self, job_id: str) -> bool:
        """The ack script: delete only while the claim is still held."""
        if self.claimed.pop(job_id, None) is None:
            return False
        self.attempts.pop(job_id, None)
        return self.data.pop(job_id, None) is not None

    def recycle(self, cutoff: int, max_attempts: int, limit: int) -> tuple[int, int]:
        """Chron step 2: stale claims go back to the front of the line or are abandoned."""
        released = abandoned = 0
        for job_id in _range_by_score(self.claimed, cutoff, limit):
            claimed_at = self.claimed.pop(job_id)
            if self.attempts.get(job_id, 0) < max_attempts:
                self.unclaimed.append(job_id)  # RPUSH: popped next
                released += 1
            else:
                self.abandoned[job_id] = claimed_at  # the score stays the last claim time
                abandoned += 1
        return released, abandoned

    def prune(self, cutoff: int, limit: int) -> int:
        """Chron step 3: forget abandoned jobs whose last claim is older than the cutoff."""
        ids = _range_by_score(self.abandoned, cutoff, limit)
        for job_id in ids:
            del self.abandoned[job_id]
            self.attempts.pop(job_id, None)
            self.data.pop(job_id, None)
        return len(ids)

    def undelay(self, now: int, limit: int) -> int:
        """Chron step 4: due delayed jobs join the back of the line (dedup hash kept)."""
        ids = _range_by_score(self.delayed, now, limit)
        for job_id in ids:
            del self.delayed[job_id]
            self.unclaimed.appendleft(job_id)  # LPUSH: behind everything already ready
        return len(ids)

    def holds_jobs(self) -> bool:
        """Whether maintenance still has work here; abandoned jobs count (PHP leaked them)."""
        return bool(self.unclaimed or self.claimed or self.delayed or self.abandoned)

    def is_empty(self) -> bool:
        return not (self.holds_jobs() or self.data or self.attempts or self.id_by_sha1)

    def ordered_ids(self, state: JobState) -> list[str]:
        """IDs in listing order: unclaimed next-to-pop first, the sorted sets by score."""
        if state is JobState.UNCLAIMED:
            return list(reversed(self.unclaimed))
        zset = {
            JobState.DELAYED: self.delayed,
            JobState.CLAIMED: self.claimed,
            JobState.ABANDONED: self.abandoned,
        }[state]
        return [member for _, member in sorted((s, m) for m, s in zset.items())]


class MemoryQueue(JobQueue):
    """One (domain, type) queue of a :class:`MemoryBackend`; holds no state of its own."""

    def __init__(self, backend: MemoryBackend, domain: str, job_type: str) -> None:
        super().__init__(backend, domain, job_type)
        self._mem = backend
        self._key = (domain, job_type)
        self._queue_id = (job_type, domain)

    # The callers hold the backend lock around every use of the store.
    def _store(self) -> _Store | None:
        return self._mem._stores.get(self._key)

    def _store_for_write(self) -> _Store:
        return self._mem._stores.setdefault(self._key, _Store())

    def _decode(self, job_id: str, blob: bytes, attempts: int, state: JobState) -> QueuedJob | None:
        try:
            record = decode_record(blob)
        except RecordError as exc:
            log.warning(
                "Could not unserialize %s job %s of %s: %s", self.type, job_id, self.domain, exc
            )
            return None
        job = QueuedJob.from_record(record, self.domain, attempts=attempts, state=state)
        # The storage ID is the ack handle, even if a foreign record names another uuid.
        return job if job.id == job_id else dataclasses.replace(job, id=job_id)

    def _batch_items(self, specs: list[JobSpec], now: int) -> list[_Item]:
        """Encode the batch, de-duplicated against itself as doBatchPush does: keyed by
        dedup hash (else ID), a later duplicate replaces the earlier one in its place."""
        items: dict[str, _Item] = {}
        for spec in specs:
            job_id = new_job_id()
            record = spec.to_record(job_id, now)
            blob = encode_record(record, compress=self._mem.compress)
            item = _Item(job_id, record.sha1, spec.release_timestamp or 0, blob)
            items[item.sha1 or job_id] = item
        return list(items.values())

    def _push(self, specs: list[JobSpec], now: int) -> int:
        items = self._batch_items(specs, now)  # encode first: a bad spec changes nothing
        with self._mem._lock:
            store = self._store_for_write()
            pushed = sum(1 for item in items if store.add(item))
            if pushed:
                self._mem._with_jobs.add(self._queue_id)
        return pushed

    def _pop_many(self, n: int, now: int) -> list[QueuedJob]:
        jobs: list[QueuedJob] = []
        corrupt = 0
        with self._mem._lock:
            store = self._store()
            while store is not None and store.unclaimed and len(jobs) < n:
                job_id = store.claim(now)
                blob = store.data.get(job_id)
                if blob is None:
                    # A ghost ID (no record) is dropped and the pop goes on, as on Redis.
                    log.warning("dropped %s job %s of %s: it has no record",
                                self.type, job_id, self.domain)  # fmt: skip
                    store.drop_ghost(job_id)
                    continue
                job = self._decode(job_id, blob, store.attempts[job_id], JobState.CLAIMED)
                if job is None:
                    store.set_aside(job_id)
                    corrupt += 1
                    continue
                jobs.append(job)
        self._event("corrupt", corrupt)  # outside the lock: the sink may be slow or re-enter
        return jobs

    def _ack_many(self, jobs: list[QueuedJob]) -> list[bool]:
        with self._mem._lock:
            store = self._store()
            return [store is not None and store.ack(job.id) for job in jobs]

    def delete(self) -> None:
        with self._mem._lock:
            self._mem._stores.pop(self._key, None)
            self._mem._with_jobs.discard(self._queue_id)

    def sizes(self) -> QueueSizes:
        with self._mem._lock:
            store = self._store()
            if store is None:
                return QueueSizes(0, 0, 0, 0)
            return QueueSizes(
                unclaimed=len(store.unclaimed),
                claimed=len(store.claimed),
                abandoned=len(store.abandoned),
                delayed=len(store.delayed),
            )

    def list_jobs(self, state: JobState, limit: int | None = None) -> list[QueuedJob]:
        with self._mem._lock:
            store = self._store()
            return [] if store is None else self._listed(store, state, limit)

    def _listed(self, store: _Store, state: JobState, limit: int | None) -> list[QueuedJob]:
        jobs: list[QueuedJob] = []
        for job_id in store.ordered_ids(state):
            if limit is not None and len(jobs) >= limit:
                break
            blob = store.data.get(job_id)
            if blob is None:
                continue  # a ghost ID: nothing to show
            job = self._decode(job_id, blob, store.attempts.get(job_id, 0), state)
            if job is not None:
                jobs.append(job)
        return jobs

    def deduplicate_root_job(self, spec: JobSpec) -> bool:
        root = spec.root_job
        if root is None:
            raise ValueError(f"{spec.type} job has no root-job params to register")
        key = (self.domain, self.type, root.signature)
        with self._mem._lock:
            stored = self._mem._root_timestamp(key)
            # PHP: `$stored && $stored >= $new`; the key then keeps the newest timestamp.
            if stored and stored >= root.timestamp_int:
                return True
            self._mem._root_jobs[key] = (root.timestamp_int, self._mem.clock() + ROOT_JOB_TTL)
        return False

    def is_root_job_old_duplicate(self, job: QueuedJob) -> bool:
        root = job.root_job
        if root is None:
            return False
        with self._mem._lock:
            stored = self._mem._root_timestamp((self.domain, self.type, root.signature))
        return stored is not None and stored > root.timestamp_int

    def _maintain(self, policy: MaintenancePolicy, now: int) -> MaintenanceResult:
        with self._mem._lock:
            store = self._store()
            if store is None:
                self._mem._with_jobs.discard(self._queue_id)
                return MaintenanceResult()
            released, abandoned = store.recycle(
                now - policy.claim_ttl, policy.max_attempts, policy.batch
            )
            pruned = store.prune(now - policy.abandoned_retention, policy.batch)
            undelayed = store.undelay(now, policy.batch)
            ready = len(store.unclaimed)
            if store.holds_jobs():
                self._mem._with_jobs.add(self._queue_id)
            else:
                self._mem._with_jobs.discard(self._queue_id)
                if store.is_empty():
                    del self._mem._stores[self._key]
        return MaintenanceResult(released, abandoned, pruned, undelayed, ready)


class MemoryBackend(QueueBackend):
    """Queues in this process's memory, with JobQueueRedis semantics (see the module doc).

    ``compress`` stores large records gzip-wrapped as MediaWiki's ``compression: gzip``
    queue option does. :meth:`plant_raw` and :meth:`plant_ghost` put damaged data in, for
    tests of the paths that must survive it.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        on_event: EventSink | None = None,
        compress: bool = False,
    ) -> None:
        super().__init__(clock=clock, on_event=on_event)
        self.compress = compress
        self._lock = threading.Lock()
        self._stores: dict[tuple[str, str], _Store] = {}  # (domain, type) -> store
        self._with_jobs: set[tuple[str, str]] = set()  # (type, domain): s-queuesWithJobs
        # (domain, type, signature) -> (root-job timestamp, expiry in clock seconds)
        self._root_jobs: dict[tuple[str, str, str], tuple[int, float]] = {}

    def __repr__(self) -> str:
        return f"<MemoryBackend at {id(self):#x}>"

    def queue(self, domain: str, job_type: str) -> MemoryQueue:
        return MemoryQueue(self, domain, job_type)

    def queues_with_jobs(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._with_jobs)

    def _root_timestamp(self, key: tuple[str, str, str]) -> int | None:
        """The registered root-job timestamp, honouring its expiry (lock held)."""
        entry = self._root_jobs.get(key)
        if entry is None:
            return None
        if self.clock() >= entry[1]:
            del self._root_jobs[key]
            return None
        return entry[0]

    def plant_raw(self, domain: str, job_type: str, job_id: str, blob: bytes) -> None:
        """Put ``blob`` in as an unclaimed job's record without decoding it (tests)."""
        with self._lock:
            store = self._stores.setdefault((domain, job_type), _Store())
            store.unclaimed.appendleft(job_id)
            store.data[job_id] = blob
            self._with_jobs.add((job_type, domain))

    def plant_ghost(self, domain: str, job_type: str, job_id: str) -> None:
        """Put an unclaimed ID with no record in, as old MediaWiki acks could leave (tests)."""
        with self._lock:
            store = self._stores.setdefault((domain, job_type), _Store())
            store.unclaimed.appendleft(job_id)
            self._with_jobs.add((job_type, domain))

    def raw_record(self, domain: str, job_type: str, job_id: str) -> bytes | None:
        """The stored (encoded) record of a job in any state, or None."""
        with self._lock:
            store = self._stores.get((domain, job_type))
            return None if store is None else store.data.get(job_id)


# memory://NAME backends of this process, so that everything opening the same URL (a chron
# and a runner in one process, a test and the code it drives) shares the same queues.
_NAMED: dict[str, MemoryBackend] = {}
_NAMED_LOCK = threading.Lock()


def open_location(
    location: BackendLocation, *, clock: Clock, on_event: EventSink | None
) -> MemoryBackend:
    """The process's backend named by ``memory://NAME`` (made on first use; ``clock`` and
    ``on_event`` are those of the first opener)."""
    name = location.url.split("://", 1)[1]
    with _NAMED_LOCK:
        backend = _NAMED.get(name)
        if backend is None:
            backend = _NAMED[name] = MemoryBackend(clock=clock, on_event=on_event)
        return backend
