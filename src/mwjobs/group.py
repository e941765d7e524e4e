"""Route jobs of one wiki to their queues: MediaWiki's ``JobQueueGroup``.

A :class:`JobQueueGroup` is one wiki's (DB domain's) view of the queues: ``push`` splits a
batch by type and pushes each part to that type's queue, ``pop`` takes a job of one type or
of any default type (queues with jobs, shuffled, as MediaWiki does), ``ack`` routes back by
the job's type. A type may live on another backend than the rest (``overrides``, the
per-type ``$wgJobTypeConf`` entries).

:func:`push` is the one call for application code; it uses the group set with
:func:`configure`, else one built from ``MWJOBS_REDIS_URL`` and ``MWJOBS_WIKI``. Nothing
connects before the first push.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

from mwjobs.codec import PhpKey, PhpValue
from mwjobs.errors import ConfigError
from mwjobs.model.data import JobSpec, QueuedJob
from mwjobs.model.registry import JobRegistry, default_registry
from mwjobs.model.runnable import Job
from mwjobs.queues.backends import open_backend
from mwjobs.queues.base import Clock, JobQueue, JobWaiter, PollingWaiter, QueueBackend

__all__ = ["JobQueueGroup", "configure", "default_group", "deferred", "lazy_push", "push"]

log = logging.getLogger(__name__)

# How long the list of queues with jobs is reused for pops of "any default type"
# (MediaWiki's process cache for JobQueueGroup::pop with USE_CACHE).
QUEUES_WITH_JOBS_TTL = 15.0

Pushable = JobSpec | Job


class JobQueueGroup:
    """The queues of one wiki, one per job type, on ``backend`` (or a per-type override).

    ``registry`` decides which types exist for :meth:`pop` without a type (its types
    minus ``excluded_from_default``, MediaWiki's ``$wgJobTypesExcludedFromDefaultQueue``).
    """

    def __init__(
        self,
        backend: QueueBackend,
        domain: str,
        *,
        overrides: Mapping[str, QueueBackend] | None = None,
        registry: JobRegistry = default_registry,
        excluded_from_default: Collection[str] = (),
        rng: random.Random | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.backend = backend
        self._domain = domain
        self.overrides = dict(overrides or {})
        self.registry = registry
        self.excluded_from_default = frozenset(excluded_from_default)
        self._rng = rng or random.Random()
        self._clock = clock
        self._queues: dict[str, JobQueue] = {}
        self._with_jobs: list[str] | None = None
        self._with_jobs_at = 0.0

    def __repr__(self) -> str:
        return f"<JobQueueGroup {self._domain!r} on {self.backend}>"

    @property
    def domain(self) -> str:
        return self._domain

    def backend_for(self, job_type: str) -> QueueBackend:
        return self.overrides.get(job_type, self.backend)

    def queue(self, job_type: str) -> JobQueue:
        """This wiki's queue of ``job_type`` (kept: building one is not free on Redis)."""
        queue = self._queues.get(job_type)
        if queue is None:
            queue = self.backend_for(job_type).queue(self._domain, job_type)
            self._queues[job_type] = queue
        return queue

    # -- push ---------------------------------------------------------------------------

    def push(self, jobs: Pushable | Sequence[Pushable]) -> int:
        """Push one job or a batch (specs or :class:`Job` objects), one atomic push per
        type; return how many were added (duplicates dropped by a queue do not count)."""
        specs = _as_specs(jobs)
        if len(specs) == 1:  # one job (what mwjobs.push makes): nothing to group
            pushed = self.queue(specs[0].type).push(specs)
        else:
            by_type: dict[str, list[JobSpec]] = defaultdict(list)
            for spec in specs:
                by_type[spec.type].append(spec)
            pushed = sum(self.queue(job_type).push(part) for job_type, part in by_type.items())
        self.forget_queues_with_jobs()  # new work: look again on the next pop of any type
        return pushed

    def lazy_push(self, jobs: Pushable | Sequence[Pushable]) -> None:
        """Push at the end of this thread's :func:`deferred` block, or now without one."""
        specs = _as_specs(jobs)
        if _deferred.depth:
            _deferred.pending.append((self, specs))
        else:
            self.push(specs)

    # -- pop ----------------------------------------------------------------------------

    def pop(
        self, job_type: str | None = None, *, ignored: Collection[str] = ()
    ) -> QueuedJob | None:
        """Claim a job of ``job_type``, or of any default type with jobs when None."""
        jobs = self.pop_many(job_type, 1, ignored=ignored)
        return jobs[0] if jobs else None

    def pop_many(
        self, job_type: str | None, n: int, *, ignored: Collection[str] = ()
    ) -> list[QueuedJob]:
        """Claim up to ``n`` jobs from one queue: ``job_type``'s (nothing if it is in
        ``ignored``), or the first non-empty default-type queue in random order."""
        if job_type is not None:
            return [] if job_type in ignored else self.queue(job_type).pop_many(n)
        for candidate in self._candidates(ignored):
            jobs = self.queue(candidate).pop_many(n)
            if jobs:
                return jobs
            self.forget_queues_with_jobs()  # stale: ask the backend again next time (as MW)
        return []

    # -- waiting ------------------------------------------------------------------------

    def waiter(self, job_type: str | None = None) -> JobWaiter:
        """A waiter for new jobs of ``job_type`` (None: every default type), for a runner
        gone idle; see :class:`~mwjobs.queues.base.JobWaiter`. The queues' backend's own
        waiter when they share one (Redis: pushes hand jobs over), else polling."""
        types = [job_type] if job_type is not None else self.default_types()
        queues = [self.queue(t) for t in types]
        backends = {id(queue.backend): queue.backend for queue in queues}
        if len(backends) == 1:
            return next(iter(backends.values())).waiter(queues)
        return PollingWaiter(queues)

    def forget_queues_with_jobs(self) -> None:
        """Drop the cached list of queues with jobs (:meth:`pop_many` of any type reads it
        again): a waiter said new work is ready, maybe of a type the list lacks."""
        self._with_jobs = None

    def default_types(self) -> list[str]:
        """Registered types minus those excluded from the default queue."""
        return [t for t in self.registry.types() if t not in self.excluded_from_default]

    def types_with_jobs(self) -> list[str]:
        """Types of this wiki whose queues may hold jobs (every backend asked)."""
        backends = {id(b): b for b in (self.backend, *self.overrides.values())}
        found: set[str] = set()
        for backend in backends.values():
            found.update(t for t, domain in backend.queues_with_jobs() if domain == self._domain)
        return sorted(found)

    def _candidates(self, ignored: Collection[str]) -> list[str]:
        now = self._clock()
        if self._with_jobs is None or now - self._with_jobs_at > QUEUES_WITH_JOBS_TTL:
            default = set(self.default_types())
            self._with_jobs = [t for t in self.types_with_jobs() if t in default]
            self._with_jobs_at = now
        candidates = [t for t in self._with_jobs if t not in ignored]
        self._rng.shuffle(candidates)
        return candidates

    # -- ack ----------------------------------------------------------------------------

    def ack(self, job: QueuedJob) -> bool:
        """Delete a claimed job; False if its claim is gone (see :meth:`JobQueue.ack`)."""
        return self.queue(job.type).ack(job)

    def ack_many(self, jobs: Iterable[QueuedJob]) -> list[bool]:
        """Ack jobs of any types, one round trip per type; one result per job, in order."""
        jobs = list(jobs)
        positions: dict[str, list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            positions[job.type].append(i)
        results = [False] * len(jobs)
        for job_type, indexes in positions.items():
            done = self.queue(job_type).ack_many([jobs[i] for i in indexes])
            for i, ok in zip(indexes, done, strict=True):
                results[i] = ok
        return results


def _as_specs(jobs: Pushable | Sequence[Pushable]) -> list[JobSpec]:
    """What is pushed, as specs: one spec or job object, or a sequence of them."""
    if isinstance(jobs, JobSpec):
        return [jobs]
    if isinstance(jobs, Job):
        return [jobs.to_spec()]
    return [job if isinstance(job, JobSpec) else job.to_spec() for job in jobs]


# -- the one-call API ---------------------------------------------------------------------

_default: JobQueueGroup | None = None
_default_lock = threading.Lock()


def configure(
    backend: QueueBackend | str,
    wiki: str,
    *,
    overrides: Mapping[str, QueueBackend] | None = None,
    registry: JobRegistry = default_registry,
) -> JobQueueGroup:
    """Set the group :func:`push` uses: a backend (or its URL, or a Redis ``host:port``) and the
    wiki's DB domain, with optional per-type backends. Connects to nothing."""
    global _default  # noqa: PLW0603 - the process-wide default, like MediaWiki's service
    group = JobQueueGroup(_backend(backend), wiki, overrides=overrides, registry=registry)
    with _default_lock:
        _default = group
    return group


def default_group() -> JobQueueGroup:
    """The group set by :func:`configure`, else one from ``MWJOBS_REDIS_URL`` and
    ``MWJOBS_WIKI``; :class:`ConfigError` when neither is there."""
    global _default  # noqa: PLW0603 - see configure
    group = _default  # configure() swaps the whole reference, so a set one needs no lock
    if group is not None:
        return group
    with _default_lock:
        if _default is None:
            env = os.environ
            url = env.get("MWJOBS_QUEUE_URL") or env.get("MWJOBS_REDIS_URL")
            wiki = env.get("MWJOBS_WIKI")
            if not url or not wiki:
                raise ConfigError(
                    "mwjobs.push: no queue configured; call mwjobs.configure(backend, wiki) "
                    "or set MWJOBS_QUEUE_URL (e.g. redis://127.0.0.1:6379/0) and MWJOBS_WIKI"
                )
            _default = JobQueueGroup(_backend(url), wiki)
        return _default


def _backend(backend: QueueBackend | str) -> QueueBackend:
    return backend if isinstance(backend, QueueBackend) else open_backend(backend)


def push(
    job: str | Pushable | Sequence[Pushable],
    params: Mapping[PhpKey, PhpValue] | None = None,
    *,
    wiki: str | None = None,
    group: JobQueueGroup | None = None,
    delay: float | None = None,
    release_at: float | None = None,
    remove_duplicates: bool = False,
    ignore_params: Iterable[str] = (),
    namespace: int | None = None,
    title: str | None = None,
) -> int:
    """Push jobs in one call; return how many were added.

    ``job`` is a type name (with ``params`` and the :meth:`JobSpec.create` options), a
    :class:`JobSpec`, a :class:`Job` object or a list of specs/jobs. ``group`` defaults to
    :func:`default_group`; ``wiki`` picks another wiki on the same backend::

        mwjobs.push("sendMail", {"to": "a@example.org"}, delay=60)
        mwjobs.push(NullJob({"lives": 3}), wiki="dewiki")
    """
    target, jobs = _resolve(job, params, wiki, group, delay=delay, release_at=release_at,
                            remove_duplicates=remove_duplicates, ignore_params=ignore_params,
                            namespace=namespace, title=title)  # fmt: skip
    return target.push(jobs)


def lazy_push(
    job: str | Pushable | Sequence[Pushable],
    params: Mapping[PhpKey, PhpValue] | None = None,
    *,
    wiki: str | None = None,
    group: JobQueueGroup | None = None,
    delay: float | None = None,
    release_at: float | None = None,
    remove_duplicates: bool = False,
    ignore_params: Iterable[str] = (),
    namespace: int | None = None,
    title: str | None = None,
) -> None:
    """:func:`push`, deferred to the end of the enclosing :func:`deferred` block of this
    thread (MediaWiki's ``JobQueueGroup::lazyPush``); without one, pushed now. The jobs
    are checked now, so a bad job fails here, not at the end of the block."""
    target, jobs = _resolve(job, params, wiki, group, delay=delay, release_at=release_at,
                            remove_duplicates=remove_duplicates, ignore_params=ignore_params,
                            namespace=namespace, title=title)  # fmt: skip
    target.lazy_push(jobs)


def _resolve(
    job: str | Pushable | Sequence[Pushable],
    params: Mapping[PhpKey, PhpValue] | None,
    wiki: str | None,
    group: JobQueueGroup | None,
    **options: Any,
) -> tuple[JobQueueGroup, Pushable | Sequence[Pushable]]:
    """The target group and the jobs of a :func:`push` / :func:`lazy_push` call."""
    target = group or default_group()
    if wiki is not None and wiki != target.domain:
        target = JobQueueGroup(
            target.backend, wiki, overrides=target.overrides, registry=target.registry
        )
    if isinstance(job, str):
        return target, JobSpec.create(job, params, **options)
    if (params is not None or options["delay"] is not None
            or options["release_at"] is not None or options["title"]):  # fmt: skip
        raise TypeError("params and spec options are only taken with a job type name")
    return target, job


# -- deferred pushes ------------------------------------------------------------------------


class _Deferred(threading.local):
    """This thread's open :func:`deferred` blocks and the jobs they hold."""

    depth = 0
    pending: list[tuple[JobQueueGroup, list[JobSpec]]]


_deferred = _Deferred()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Collect :func:`lazy_push` / :meth:`JobQueueGroup.lazy_push` jobs of this thread and
    push them when the block ends, one batch per wiki and type (MediaWiki pushes lazy jobs
    at the end of the web request). Nested blocks join the outermost one. If the block
    raises, its jobs are dropped (logged): work for a failed request is not queued. ::

        with mwjobs.deferred():        # e.g. around one web request
            mwjobs.lazy_push("sendMail", {"to": "a@example.org"})
            ...
        # pushed here
    """
    outermost = _deferred.depth == 0
    if outermost:
        _deferred.pending = []
    _deferred.depth += 1
    try:
        yield
    except BaseException:
        if outermost:
            dropped = sum(len(specs) for _, specs in _deferred.pending)
            _deferred.pending = []
            if dropped:
                log.warning("dropped %d deferred job(s): their block raised", dropped)
        raise
    finally:
        _deferred.depth -= 1
    if outermost:
        pending, _deferred.pending = _deferred.pending, []
        _push_deferred(pending)


def _push_deferred(pending: list[tuple[JobQueueGroup, list[JobSpec]]]) -> None:
    """Push every group's jobs; a failing group does not stop the others (as MediaWiki's
    JobQueueEnqueueUpdate); the first error is raised after all were tried."""
    by_group: dict[int, tuple[JobQueueGroup, list[JobSpec]]] = {}
    for group, specs in pending:
        by_group.setdefault(id(group), (group, []))[1].extend(specs)
    first: Exception | None = None
    for group, specs in by_group.values():
        try:
            group.push(specs)
        except Exception as exc:
            log.error("deferred push of %d job(s) to %r failed: %s", len(specs), group, exc)
            first = first or exc
    if first is not None:
        raise first
