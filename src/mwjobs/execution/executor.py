"""Run jobs from a wiki's queues: MediaWiki's ``JobRunner::run`` for Python jobs.

:meth:`JobExecutor.run` pops and runs jobs until a limit is reached and returns what
``runJobs.php --result=json`` prints (:meth:`RunResult.to_json`), so the PHP jobrunner
service and ours can drive ``mwjobs run-jobs`` as they drive runJobs.php. The rules are
MediaWiki's:

* a job succeeded unless ``run()`` returned exactly False or raised; it is acked when it
  succeeded or when its class does not allow retries; a failed retryable job stays claimed
  until the chron recycles it (or abandons it after the attempt limit);
* a job superseded by a newer root job runs as a no-op :class:`~mwjobs.model.runnable.DuplicateJob`
  and is acked;
* an exception is caught, logged with its traceback, reported as ``"<Class>: <message>"``
  and never stops the loop (a lost queue connection ends it with ``reached: exception``);
* per-type backoff throttling shares its state with every runner of the host
  (:mod:`mwjobs.execution.backoff`), plus the 1-in-50 error backoff;
* stop checks after each job, in this order: job-limit, time-limit, exception,
  memory-limit (MediaWiki's read-only and replica-lag checks have no Python counterpart).

Beyond MediaWiki: ``batch`` > 1 claims jobs several at a time (``pop_many``) and acks them in
batches. Jobs claimed but not run when the loop stops are handed back: pushed again as new
jobs and their claims acked, so none waits for the claim TTL.
"""

from __future__ import annotations

import logging
import os
import random
import resource
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mwjobs.codec import new_request_id, unix_from_mw_timestamp
from mwjobs.codec.formatjson import format_json
from mwjobs.errors import MwJobsError, QueueError, RecordError
from mwjobs.execution.backoff import BackoffFile, time_to_wait
from mwjobs.group import JobQueueGroup
from mwjobs.metrics import JobMetrics, JobSample, peak_rss_kib
from mwjobs.model.data import ROOT_TIMESTAMP_PARAM, QueuedJob, set_request_id
from mwjobs.model.runnable import DuplicateJob, Job

__all__ = [
    "JobExecutor",
    "JobOutcome",
    "Reached",
    "RunOptions",
    "RunResult",
    "describe_exception",
    "parse_memory_limit",
    "resident_memory",
]

log = logging.getLogger(__name__)


class Reached:
    """The ``reached`` values: why a run stopped."""

    NONE_READY = "none-ready"
    NONE_POSSIBLE = "none-possible"
    JOB_LIMIT = "job-limit"
    TIME_LIMIT = "time-limit"
    MEMORY_LIMIT = "memory-limit"
    EXCEPTION = "exception"


# Seconds added to a type's backoff after a failure (JobRunner::ERROR_BACKOFF_TTL), for 1
# failure in ERROR_BACKOFF_ODDS (by design in MediaWiki).
ERROR_BACKOFF_TTL = 1
ERROR_BACKOFF_ODDS = 50
# Share of the memory limit at which a run stops (checkMemoryOK).
MEMORY_LIMIT_SHARE = 0.95
# Exceptions from a job that mean the storage connection is gone (MediaWiki:
# DBConnectionError): the run stops after that job with ``reached: exception``.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (QueueError, ConnectionError)

_MEMORY_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


@dataclass(frozen=True)
class RunOptions:
    """What one run may do. ``job_type`` None: any default type. ``max_jobs``/``max_time``
    0: no limit. ``memory_limit`` in bytes, None: no limit. ``throttle`` False: backoffs are
    still computed and shared, but not honoured (``--nothrottle``)."""

    job_type: str | None = None
    max_jobs: int = 0
    max_time: float = 0.0
    memory_limit: int | None = None
    throttle: bool = True
    batch: int = 1


@dataclass(frozen=True)
class JobOutcome:
    """One entry of the result's ``jobs`` list."""

    type: str
    status: bool
    error: str | None
    time: int  # milliseconds

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "status": "ok" if self.status else "failed",
            "error": self.error,
            "time": self.time,
        }


@dataclass
class RunResult:
    """``JobRunner::run``'s response. ``backoffs``/``elapsed`` are None on early exits,
    which leave those keys out, as in MediaWiki."""

    jobs: list[JobOutcome] = field(default_factory=list)
    reached: str = Reached.NONE_READY
    backoffs: dict[str, float] | None = None
    elapsed: int | None = None

    def to_response(self) -> dict[str, object]:
        """The response in runJobs' key order (an empty ``backoffs`` encodes as ``[]``)."""
        response: dict[str, object] = {
            "jobs": [job.to_dict() for job in self.jobs],
            "reached": self.reached,
        }
        if self.backoffs is not None:
            response["backoffs"] = self.backoffs
        if self.elapsed is not None:
            response["elapsed"] = self.elapsed
        return response

    def to_json(self) -> str:
        """Exactly what ``runJobs.php --result=json`` prints (no trailing newline)."""
        return format_json(self.to_response())


def describe_exception(exc: BaseException) -> str:
    """``"<Class>: <message>"``; classes outside builtins carry their module, as PHP's
    ``get_class`` carries the namespace."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{name}"
    return f"{name}: {exc}"


def parse_memory_limit(text: str, default: int | None = None) -> int | None:
    """Bytes from PHP's shorthand (``150M``, ``2g``, ``1048576``); None for no limit
    (``max``, ``-1``, ``0``); ``default`` for ``default``. ValueError for anything else."""
    value = text.strip().lower()
    if value == "default":
        return default
    if value in ("max", "-1", "0"):
        return None
    unit = _MEMORY_UNITS.get(value[-1:], 1)
    number = value[:-1] if unit != 1 else value
    if not number.isdigit():
        raise ValueError(f"invalid memory limit {text!r}: use e.g. 150M, 2G, max")
    return int(number) * unit


def resident_memory() -> int:
    """This process's resident set size in bytes (the Python stand-in for PHP's
    ``memory_get_usage``); the peak RSS where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _BrokenJob(Job):
    """Stands in for a job whose class could not be built: running it raises the error,
    so it is reported, logged and retried like any failing job."""

    def __init__(self, queued: QueuedJob, error: Exception) -> None:
        super().__init__(queued.params, queued=queued)
        self.error = error

    def run(self) -> bool:
        raise self.error


@dataclass
class _Executed:
    outcome: JobOutcome
    caught: BaseException | None
    ack: bool


class JobExecutor:
    """Runs jobs of one wiki (one :class:`JobQueueGroup`) with MediaWiki's runner rules.

    ``throttling`` is ``$wgJobBackoffThrottling`` (type -> work items per second);
    ``backoffs`` the host's shared file (None: backoffs live only in this process).
    ``clock`` (UNIX time, for backoff expiries), ``monotonic`` (durations), ``memory``
    (bytes in use) and ``rng`` are injected so tests control them. ``should_stop`` is
    asked after each job: True ends the run there as ``time-limit`` (a worker told to stop
    by its runner; MediaWiki's ``reached`` values have no other word for it).
    ``metrics`` gets a :class:`~mwjobs.metrics.JobSample` after each job and a flush at the
    end of each run (MediaWiki's per-job statsd metrics; None: none are taken).
    """

    def __init__(
        self,
        group: JobQueueGroup,
        *,
        throttling: Mapping[str, float] | None = None,
        backoffs: BackoffFile | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        memory: Callable[[], int] = resident_memory,
        rng: random.Random | None = None,
        should_stop: Callable[[], bool] | None = None,
        metrics: JobMetrics | None = None,
    ) -> None:
        self.group = group
        self.throttling = dict(throttling or {})
        self.backoffs = backoffs
        self.clock = clock
        self.monotonic = monotonic
        self.memory = memory
        self.rng = rng or random.Random()
        self.should_stop = should_stop
        self.metrics = metrics

    def run(
        self, options: RunOptions | None = None, claimed: Sequence[QueuedJob] = ()
    ) -> RunResult:
        """Pop and run jobs until a limit is reached or none is ready (``JobRunner::run``).
        ``claimed``: jobs already claimed for this runner (a :class:`JobWaiter`'s), run first
        as if popped; any not run are handed back."""
        options = options or RunOptions()
        if options.job_type is not None and options.job_type not in self.group.registry:
            self.hand_back(claimed)
            return RunResult(reached=Reached.NONE_POSSIBLE)
        return _Run(self, options, claimed).loop()

    def hand_back(self, jobs: Sequence[QueuedJob]) -> None:
        """Jobs claimed but not run: push them again (superseded ones need not be), then
        ack the old claims. Attempts restart; a lost race only means a job runs twice."""
        if not jobs:
            return
        again = [q.to_spec() for q in jobs if not q.is_duplicate]
        if again:
            self.group.push(again)
            log.info("handed back %d claimed job(s) not run", len(again))
        self.group.ack_many(jobs)

    def build(self, queued: QueuedJob) -> Job:
        """The job object to run for a popped job (never raises: see :class:`_BrokenJob`)."""
        if queued.is_duplicate:
            return DuplicateJob.from_queued(queued, self.group)
        try:
            return self.group.registry.get(queued.type).from_queued(queued, self.group)
        except Exception as exc:  # a bad class or params must not stop the loop
            return _BrokenJob(queued, exc)

    def time_to_wait(self, job: Job) -> int:
        """Backoff seconds this job adds for its type (0 for duplicates), as MediaWiki's
        ``JobRunner::getBackoffTimeToWait``."""
        rate = self.throttling.get(job.job_type, 0.0)
        if rate <= 0 or isinstance(job, DuplicateJob):
            return 0
        try:
            items = job.work_item_count()
        except Exception:  # a broken count only loses throttling, not the job
            log.exception("%s: work_item_count() failed", job.job_type)
            items = 1
        return time_to_wait(items, rate, self.rng)

    def execute(self, job: Job) -> _Executed:
        """Run one job with MediaWiki's bookkeeping (``executeJob``): request ID, run,
        last error, teardown, time; any exception is caught and logged."""
        queued = job.queued
        token = set_request_id((queued.request_id if queued else None) or new_request_id())
        try:
            log.debug("%s STARTING", job)
            # Wall-clock start (pickup delays count from queue timestamps) and peak RSS.
            before = (self.clock(), peak_rss_kib()) if self.metrics is not None else None
            start = self.monotonic()
            caught: Exception | None = None
            try:
                status = job.run() is not False
                error = job.last_error
            except Exception as exc:  # a job's failure is data, never the runner's end
                status, error, caught = False, describe_exception(exc), exc
            ms = int((self.monotonic() - start) * 1000)
            _teardown(job, status)
        finally:
            token.var.reset(token)
        if status:
            log.info("%s t=%d good", job, ms)
        else:
            log.error("%s t=%d error=%s", job, ms, error, exc_info=caught)
        outcome = JobOutcome(job.job_type, status, error, ms)
        if self.metrics is not None and before is not None:
            _report(self.metrics, job, before, ms)
        return _Executed(outcome, caught, ack=status or not job.allow_retries)


def _report(metrics: JobMetrics, job: Job, before: tuple[float, int], ms: int) -> None:
    """Hand one job's :class:`JobSample` to ``metrics``; a failing sink is only logged."""
    started, rss = before
    queued = job.queued
    # MediaWiki's getReadyTimestamp: the release time, else the enqueue time (0: unknown).
    ready = (queued.release_timestamp or queued.enqueue_timestamp or None) if queued else None
    sample = JobSample(
        job_type=job.job_type,
        start=started,
        ready=ready,
        root=_root_timestamp(job),
        ms=ms,
        rss_delta=max(0, peak_rss_kib() - rss),
    )
    try:
        metrics.job_done(sample)
    except Exception:  # metrics must never cost a job or the run
        log.exception("%s: reporting metrics to %r failed", job.job_type, metrics)


def _root_timestamp(job: Job) -> float | None:
    """The job's ``rootJobTimestamp`` as UNIX time; None when absent or unreadable."""
    raw = job.params.get(ROOT_TIMESTAMP_PARAM)
    if isinstance(raw, float):
        raw = int(raw)
    if not raw or isinstance(raw, bool) or not isinstance(raw, int | str):
        return None
    try:
        return float(unix_from_mw_timestamp(raw))
    except RecordError:
        return None


def _teardown(job: Job, status: bool) -> None:
    try:
        job.teardown(status)
    except Exception:  # teardown errors are only logged (as MediaWiki)
        log.exception("%s: teardown failed", job.job_type)


class _Run:
    """The state of one :meth:`JobExecutor.run` call."""

    def __init__(
        self, executor: JobExecutor, options: RunOptions, claimed: Sequence[QueuedJob] = ()
    ) -> None:
        self.ex = executor
        self.group = executor.group
        self.options = options
        self.result = RunResult()
        self.backoffs: dict[str, float] = {}
        self.deltas: dict[str, float] = {}
        self.popped = 0
        self.elapsed = 0
        self.pending: deque[QueuedJob] = deque(claimed)  # claimed, not run yet
        self.to_ack: list[QueuedJob] = []
        self.hand_back: list[QueuedJob] = []
        self.start = executor.monotonic()

    def loop(self) -> RunResult:
        wait = True  # the first sync may block; later ones must not slow the loop
        try:
            while True:
                self.sync(wait=wait)
                wait = False
                queued = self.next_job()
                if queued is None:
                    break
                reached = self.run_one(queued)
                if reached is not None:
                    self.result.reached = reached
                    break
        except MwJobsError as exc:  # the queue is unreachable: report what ran
            log.error("run stopped: %s", exc, exc_info=exc)
            self.result.reached = Reached.EXCEPTION
        except BaseException:  # Ctrl-C, SystemExit: settle the claims, then go
            # The job interrupted mid-run stays claimed: the chron retries it, as after a
            # crash. What ran is acked, so it never runs again.
            try:
                self.settle_claims()
            except Exception as exc:  # the chron recycles the rest
                log.error("could not settle claims after an interrupt: %s", exc)
            raise
        self.finish()
        return self.result

    # -- backoffs -------------------------------------------------------------------------

    def sync(self, *, wait: bool) -> None:
        store = self.ex.backoffs
        if store is None:
            self.backoffs = self._merged_locally()
            return
        try:
            self.backoffs = store.sync(self.backoffs, self.deltas, wait=wait)
        except OSError as exc:  # an unwritable temp dir costs throttling, not the run
            log.warning("backoff file %s: %s", store.path, exc)

    def _merged_locally(self) -> dict[str, float]:
        now = self.ex.clock()
        merged = {t: e for t, e in self.backoffs.items() if e >= now}
        for job_type, seconds in self.deltas.items():
            old = merged.get(job_type)
            merged[job_type] = old + seconds if old is not None else now + seconds
        self.deltas.clear()
        return merged

    def add_delta(self, job_type: str, seconds: float) -> None:
        self.deltas[job_type] = self.deltas.get(job_type, 0) + seconds

    @property
    def ignored(self) -> frozenset[str]:
        return frozenset(self.backoffs) if self.options.throttle else frozenset()

    # -- claims -----------------------------------------------------------------------------

    def next_job(self) -> QueuedJob | None:
        ignored = self.ignored
        while self.pending:
            queued = self.pending.popleft()
            if queued.type not in ignored:
                return queued
            self.hand_back.append(queued)  # its type is backing off now: do not run it
        self.flush_acks()
        jobs = self.group.pop_many(self.options.job_type, self.batch_size(), ignored=ignored)
        self.pending.extend(jobs)
        return self.pending.popleft() if self.pending else None

    def batch_size(self) -> int:
        n = max(1, self.options.batch)
        if self.options.max_jobs:
            n = min(n, self.options.max_jobs - self.popped)
        if self.options.throttle and self.throttled():
            n = 1  # each job's backoff must be seen before the next claim
        return n

    def throttled(self) -> bool:
        """Whether the jobs this run may pop have a throttling rate."""
        rates = self.ex.throttling
        if self.options.job_type is not None:
            return rates.get(self.options.job_type, 0) > 0
        return any(rate > 0 for rate in rates.values())

    def flush_acks(self) -> None:
        if self.to_ack:
            jobs, self.to_ack = self.to_ack, []
            self.group.ack_many(jobs)

    # -- one job ----------------------------------------------------------------------------

    def run_one(self, queued: QueuedJob) -> str | None:
        """Run a popped job and return why to stop now, if so."""
        self.popped += 1
        job = self.ex.build(queued)
        ttw = self.ex.time_to_wait(job)
        if ttw > 0:
            # Share it before running, so concurrent runners back off while this one works.
            self.add_delta(queued.type, ttw)
            self.sync(wait=False)
        done = self.ex.execute(job)
        if done.ack:
            self.to_ack.append(queued)
        if not done.outcome.status and self.ex.rng.randrange(ERROR_BACKOFF_ODDS) == 0:
            self.add_delta(queued.type, max(ttw, ERROR_BACKOFF_TTL))
        self.result.jobs.append(done.outcome)
        self.elapsed += done.outcome.time
        return self.stop_reason(done.caught)

    def stop_reason(self, caught: BaseException | None) -> str | None:
        options = self.options
        if options.max_jobs and self.popped >= options.max_jobs:
            return Reached.JOB_LIMIT
        if options.max_time and self.ex.monotonic() - self.start > options.max_time:
            return Reached.TIME_LIMIT
        if self.ex.should_stop is not None and self.ex.should_stop():
            return Reached.TIME_LIMIT
        if isinstance(caught, CONNECTION_ERRORS):
            return Reached.EXCEPTION
        if options.memory_limit is not None:
            used = self.ex.memory()
            if used >= MEMORY_LIMIT_SHARE * options.memory_limit:
                log.error("Detected excessive memory usage (%d/%d).", used, options.memory_limit)
                return Reached.MEMORY_LIMIT
        return None

    # -- the end ----------------------------------------------------------------------------

    def finish(self) -> None:
        try:
            self.settle_claims()
        except MwJobsError as exc:
            log.error("could not settle claims at the end of the run: %s", exc)
            self.result.reached = Reached.EXCEPTION
        if self.deltas:
            self.sync(wait=True)
        self.result.backoffs = self.backoffs
        self.result.elapsed = self.elapsed
        metrics = self.ex.metrics
        if metrics is not None:
            try:
                metrics.flush()  # a run's last packets must not wait for the next run
            except Exception:
                log.exception("flushing metrics to %r failed", metrics)

    def settle_claims(self) -> None:
        """Ack the jobs that ran; hand back those claimed and not started."""
        self.hand_back.extend(self.pending)
        self.pending.clear()
        self.flush_acks()
        self.give_back()

    def give_back(self) -> None:
        jobs, self.hand_back = self.hand_back, []
        self.ex.hand_back(jobs)
