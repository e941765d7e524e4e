"""The contract every queue backend keeps (Redis, SQL, memory, federated).

A :class:`QueueBackend` is one storage place (a Redis server, a database, a process's
memory). It hands out :class:`JobQueue` objects, one per (domain, job type), exactly as
MediaWiki has one ``JobQueue`` per wiki and type. Shared policy (root-job supersession on
pop, root-job registration after push, event counting) lives here as template methods;
backends supply the ``_primitives``.

One job's life (see docs/architecture.md): push (maybe delayed, maybe dropped as a duplicate) ->
unclaimed -> popped (claimed, attempts + 1) -> acked (gone) | not acked -> recycled by
:meth:`JobQueue.maintain` after the claim TTL -> ... -> abandoned after the attempt limit
-> pruned after the abandoned retention. Every backend keeps this life.

Time: every backend takes a ``clock`` (UNIX seconds, float) at construction and reads it
instead of ``time.time()``, so tests move time instead of sleeping.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

from mwjobs.model.data import JobSpec, JobState, QueuedJob

__all__ = [
    "Clock",
    "EventSink",
    "JobQueue",
    "JobWaiter",
    "MaintenancePolicy",
    "MaintenanceResult",
    "PollingWaiter",
    "QueueBackend",
    "QueueSizes",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
# (event, job type, count): inserts, inserts_actual, dupe_inserts, pops, dupe_pops, acks,
# recycles, abandons, prunes, undelays, corrupt — MediaWiki's jobqueue_events_total plus ours.
EventSink = Callable[[str, str, int], None]

ABANDONED_RETENTION = 7 * 86400
MAINTENANCE_BATCH = 500


@dataclass(frozen=True)
class QueueSizes:
    """Job counts of one queue. ``claimed`` excludes abandoned jobs (unlike MW's acquired)."""

    unclaimed: int
    claimed: int
    abandoned: int
    delayed: int

    @property
    def total(self) -> int:
        return self.unclaimed + self.claimed + self.abandoned + self.delayed


@dataclass(frozen=True)
class MaintenancePolicy:
    """The chron's limits for one queue (``limits.claimTTL`` / ``limits.attempts``)."""

    claim_ttl: int = 3600
    max_attempts: int = 3
    abandoned_retention: int = ABANDONED_RETENTION
    batch: int = MAINTENANCE_BATCH


@dataclass(frozen=True)
class MaintenanceResult:
    """What one maintenance step did: the chron script's five counts."""

    released: int = 0
    abandoned: int = 0
    pruned: int = 0
    undelayed: int = 0
    ready: int = 0

    @property
    def affected(self) -> int:
        """Jobs whose state changed (the number the chron logs and returns)."""
        return self.released + self.abandoned + self.pruned + self.undelayed


class JobQueue(abc.ABC):
    """One (domain, job type) queue. Public methods are the contract; see each docstring."""

    def __init__(self, backend: QueueBackend, domain: str, job_type: str) -> None:
        self.backend = backend
        self.domain = domain
        self.type = job_type

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type!r} of {self.domain!r} on {self.backend}>"

    def _now(self) -> int:
        return int(self.backend.clock())

    def _event(self, event: str, count: int = 1) -> None:
        if count:
            self.backend.emit(event, self.type, count)

    # -- push ---------------------------------------------------------------------------

    def push(self, specs: Sequence[JobSpec]) -> int:
        """Store ``specs`` atomically (all or none); return how many were actually added.

        Each spec must have this queue's type (ValueError otherwise). A spec with a dedup
        hash is dropped when an unclaimed or delayed job with the same hash exists. Within
        one batch, a later spec with the same hash replaces the earlier one's data but keeps
        its place (MediaWiki's doBatchPush). A spec with a release time is stored delayed
        until a maintenance step at or after that time releases it. Afterwards root jobs in
        the batch are registered (:meth:`deduplicate_root_job`) so older batches of the same
        root are superseded.
        """
        for spec in specs:
            if spec.type != self.type:
                raise ValueError(f"job type {spec.type!r} pushed to the {self.type!r} queue")
        if not specs:
            return 0
        pushed = self._push(list(specs), self._now())
        self._event("inserts", len(specs))
        self._event("inserts_actual", pushed)
        self._event("dupe_inserts", len(specs) - pushed)
        for spec in specs:
            if spec.is_root_job:
                self.deduplicate_root_job(spec)
        return pushed

    @abc.abstractmethod
    def _push(self, specs: list[JobSpec], now: int) -> int:
        """Store the batch atomically with the dedup rule; return the number added."""

    # -- pop ----------------------------------------------------------------------------

    def pop(self) -> QueuedJob | None:
        """Claim the next ready job (FIFO; recycled jobs first), or None when none is ready.

        The claim records the time and increments the job's attempts. A job whose record
        cannot be decoded is set aside (abandoned at once, logged, counted as ``corrupt``)
        and the next job is tried, so a bad record never blocks a queue. A job superseded by
        a newer root job comes back with ``is_duplicate`` set.
        """
        jobs = self.pop_many(1)
        return jobs[0] if jobs else None

    def pop_many(self, n: int) -> list[QueuedJob]:
        """Claim up to ``n`` ready jobs at once, with the same per-job semantics as pop."""
        if n <= 0:
            return []
        jobs = self._pop_many(n, self._now())
        self._event("pops", len(jobs))
        return [self._mark_superseded(job) for job in jobs]

    @abc.abstractmethod
    def _pop_many(self, n: int, now: int) -> list[QueuedJob]:
        """Claim up to n jobs in FIFO order, setting corrupt records aside."""

    def _mark_superseded(self, job: QueuedJob) -> QueuedJob:
        try:
            old = self.is_root_job_old_duplicate(job)
        except Exception:  # never lose a job over the supersession check (as MediaWiki)
            log.exception("root-job check failed for %s job %s; running it", self.type, job.id)
            return job
        if old:
            self._event("dupe_pops")
            return job.as_duplicate()
        return job

    # -- ack ----------------------------------------------------------------------------

    def ack(self, job: QueuedJob) -> bool:
        """Delete a claimed job for good. False if the claim is gone (already recycled,
        abandoned or acked), in which case nothing changes and the job may run again."""
        return self.ack_many([job])[0]

    def ack_many(self, jobs: Sequence[QueuedJob]) -> list[bool]:
        """Ack several jobs of this queue in one round trip; one result per job, in order."""
        if not jobs:
            return []
        results = self._ack_many(list(jobs))
        self._event("acks", sum(results))
        return results

    @abc.abstractmethod
    def _ack_many(self, jobs: list[QueuedJob]) -> list[bool]:
        """Delete each job only if it is still claimed; report which were."""

    # -- whole queue ----------------------------------------------------------------------

    @abc.abstractmethod
    def delete(self) -> None:
        """Remove every job of this queue in every state (MediaWiki's delete does too)."""

    @abc.abstractmethod
    def sizes(self) -> QueueSizes:
        """Counts of unclaimed (ready), claimed (not abandoned), abandoned and delayed jobs."""

    @abc.abstractmethod
    def list_jobs(self, state: JobState, limit: int | None = None) -> list[QueuedJob]:
        """Jobs in ``state`` with their attempts; unclaimed in pop order (next first),
        delayed by release time, claimed and abandoned by claim time. Records that cannot
        be decoded are skipped (logged), never raised."""

    # -- root jobs ------------------------------------------------------------------------

    @abc.abstractmethod
    def deduplicate_root_job(self, spec: JobSpec) -> bool:
        """Register ``spec``'s root-job timestamp (kept for 28 days) unless a newer or equal
        one is registered; return True if one already was. ValueError without root params."""

    @abc.abstractmethod
    def is_root_job_old_duplicate(self, job: QueuedJob) -> bool:
        """True if a strictly newer root job with the same signature was registered."""

    # -- maintenance ----------------------------------------------------------------------

    def maintain(self, policy: MaintenancePolicy, now: int | None = None) -> MaintenanceResult:
        """One chron step: recycle claims older than ``claim_ttl`` with attempts left (to the
        front: popped next), abandon the others, prune abandoned jobs whose last claim is
        older than the retention, release due delayed jobs (to the back), and report the
        counts and the number of ready jobs. At most ``policy.batch`` jobs per phase."""
        result = self._maintain(policy, self._now() if now is None else now)
        self._event("recycles", result.released)
        self._event("abandons", result.abandoned)
        self._event("prunes", result.pruned)
        self._event("undelays", result.undelayed)
        return result

    @abc.abstractmethod
    def _maintain(self, policy: MaintenancePolicy, now: int) -> MaintenanceResult:
        """The maintenance step itself, atomic per phase."""


class JobWaiter(abc.ABC):
    """An idle consumer waiting for new jobs on some queues (:meth:`QueueBackend.waiter`)."""

    #: True only while :meth:`wait` is blocked where an exception (a signal handler's) would
    #: lose nothing: the caller may interrupt it then, and only then.
    blocking: bool = False

    @contextlib.contextmanager
    def _blocked(self) -> Iterator[None]:
        """The block during which :attr:`blocking` is true."""
        self.blocking = True
        try:
            yield
        finally:
            self.blocking = False

    @abc.abstractmethod
    def wait(self, timeout: float, skip: Collection[str] = ()) -> list[QueuedJob]:
        """Block until there may be work, at most ``timeout`` seconds; queues of the types
        in ``skip`` (backing off) neither end the wait nor get jobs claimed for us. Returns
        the jobs a push claimed for this consumer (run them, or hand them back), or ``[]``:
        a queue has ready jobs or the time is up; either way, pop next."""

    @abc.abstractmethod
    def close(self) -> list[QueuedJob]:
        """Stop waiting for good. Returns jobs claimed for this consumer that no
        :meth:`wait` returned yet: the caller runs them or hands them back."""


class PollingWaiter(JobWaiter):
    """The portable waiter: looks at the queues' sizes every ``interval`` seconds. Nothing is
    ever claimed for it."""

    def __init__(self, queues: Sequence[JobQueue], interval: float = 0.05) -> None:
        self.queues = list(queues)
        self.interval = interval

    def wait(self, timeout: float, skip: Collection[str] = ()) -> list[QueuedJob]:
        deadline = time.monotonic() + timeout
        queues = [queue for queue in self.queues if queue.type not in skip]
        while not any(queue.sizes().unclaimed for queue in queues):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with self._blocked():
                time.sleep(min(self.interval, left))  # a poll interval, not synchronisation
        return []

    def close(self) -> list[QueuedJob]:
        return []


class QueueBackend(abc.ABC):
    """A storage place for queues; makes :class:`JobQueue` objects. Never connects at import
    or construction time; the first operation connects."""

    def __init__(self, *, clock: Clock = time.time, on_event: EventSink | None = None) -> None:
        self.clock = clock
        self._on_event = on_event

    def emit(self, event: str, job_type: str, count: int) -> None:
        """Report a queue event to the configured sink (metrics), if any."""
        if self._on_event is not None:
            self._on_event(event, job_type, count)

    @abc.abstractmethod
    def queue(self, domain: str, job_type: str) -> JobQueue:
        """The queue of ``job_type`` jobs of the wiki with DB domain ``domain``."""

    @abc.abstractmethod
    def queues_with_jobs(self) -> list[tuple[str, str]]:
        """(job type, domain) of every queue that may hold unclaimed, claimed or delayed
        jobs (the chron's work list; Redis: ``global:jobqueue:s-queuesWithJobs``)."""

    def maintain_many(
        self, items: Sequence[tuple[str, str, MaintenancePolicy]], now: int | None = None
    ) -> list[MaintenanceResult | Exception]:
        """Maintain many (type, domain) queues; backends batch round trips. One result per
        item, an Exception in place of a result for a queue that failed."""
        when = int(self.clock()) if now is None else now
        results: list[MaintenanceResult | Exception] = []
        for job_type, domain, policy in items:
            try:
                results.append(self.queue(domain, job_type).maintain(policy, when))
            except Exception as exc:  # one bad queue must not stop the others
                results.append(exc)
        return results

    def waiter(self, queues: Sequence[JobQueue]) -> JobWaiter:
        """A waiter for new jobs on ``queues`` (all of this backend); backends that can be
        told about pushes override this with something better than polling."""
        return PollingWaiter(queues)

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections; the backend can still reconnect if used again."""
