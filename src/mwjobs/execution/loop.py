"""The loop of ``mwjobs run-jobs``: one run, or with ``--wait`` runs until a limit, waiting
for work in between (runJobs.php's ``--wait``).

MediaWiki sleeps a second between runs. mwjobs waits at most that long on the group's
:class:`~mwjobs.queues.base.JobWaiter`: an mwjobs push ends the wait at once (on Redis its
job comes handed over, already claimed), a MediaWiki push is found when the second is up.
When a wait ends early (ready jobs) and the run after it finds nothing it may run (their
type backs off, or is unknown), the next wait starts no sooner than a second after the last
one: at most two runs a second, never a busy loop.

SIGTERM stops the process the way the python dispatcher's workers stop: the current job
finishes, the run ends as ``time-limit`` (claimed jobs not run yet are handed back), its
result is printed, and the process exits 0; idle, it leaves its wait at once. A second
SIGTERM a second or more later ends it on the spot. Ctrl-C hands back what it can and exits
as click does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from mwjobs.errors import MwJobsError
from mwjobs.execution.executor import JobExecutor, Reached, RunOptions, RunResult
from mwjobs.model.data import QueuedJob
from mwjobs.queues.base import JobWaiter

__all__ = ["FINAL", "WAIT_SECONDS", "RunLoop"]

log = logging.getLogger(__name__)

# Runs after which --wait stops looping (anything else: wait for work, run again).
FINAL = frozenset({Reached.TIME_LIMIT, Reached.JOB_LIMIT, Reached.MEMORY_LIMIT, Reached.EXCEPTION})
# MediaWiki's sleep between --wait runs: the longest wait, and the shortest rest after a run
# that found nothing.
WAIT_SECONDS = 1.0


class _Interrupted(BaseException):
    """Raised by the SIGTERM handler to end a block (a BaseException, so neither the
    executor nor redis-py mistakes it for an error of theirs)."""


class _StopOnTerm:
    """The SIGTERM handler: ask the run to stop after its current job. Raise only where
    nothing can be lost: inside the waiter's block or this loop's rest (elsewhere, e.g.
    while a handed job is being read, the loop sees the request when that step is done). A
    second SIGTERM at least a second later kills the process; a closer one is the same stop
    sent twice (a process-group signal plus the ``--procs`` parent's forward)."""

    def __init__(self) -> None:
        self.requested_at: float | None = None
        self.waiter: JobWaiter | None = None
        self.resting = False

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.requested_at is not None:
            if now - self.requested_at >= DOUBLE_SIGNAL_SECONDS:
                os._exit(128 + signum)
            return
        self.requested_at = now
        if self.resting or (self.waiter is not None and self.waiter.blocking):
            raise _Interrupted


# Two SIGTERMs closer than this are one stop delivered twice (see _StopOnTerm).
DOUBLE_SIGNAL_SECONDS = 1.0


@dataclasses.dataclass
class RunLoop:
    """Runs ``executor`` with ``options`` once, or until a limit when ``waiter`` is set;
    ``emit`` prints each run's result. Stops gracefully on SIGTERM when run in the main
    thread (signal handlers can be set only there)."""

    executor: JobExecutor
    options: RunOptions
    waiter: JobWaiter | None
    emit: Callable[[RunResult], None]
    quiet_stdout: bool = False  # JSON mode: a job's prints go to stderr
    _stop: _StopOnTerm = dataclasses.field(default_factory=_StopOnTerm)

    def run(self) -> None:
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, self._stop) if main else None
        self._stop.waiter = self.waiter
        self.executor.should_stop = lambda: self._stop.requested
        claimed: list[QueuedJob] = []
        try:
            claimed = self._loop()
        except _Interrupted:
            pass  # SIGTERM while blocked or resting: a clean stop
        finally:
            self._settle(claimed)
            if main:
                signal.signal(signal.SIGTERM, previous)

    def _loop(self) -> list[QueuedJob]:
        """Runs and waits; returns jobs claimed for us and not run (to hand back)."""
        options, claimed = self.options, list[QueuedJob]()
        rest_until = 0.0
        while True:
            if self._stop.requested:
                return claimed
            jobs, claimed = claimed, []  # the run owns them now, and hands back what it skips
            with contextlib.redirect_stdout(sys.stderr if self.quiet_stdout else sys.stdout):
                outcome = self.executor.run(options, jobs)
            self.emit(outcome)
            if self.waiter is None or outcome.reached in FINAL or self._stop.requested:
                return []
            if options.max_jobs:
                left = options.max_jobs - len(outcome.jobs)
                options = dataclasses.replace(options, max_jobs=left)
            if not outcome.jobs:
                self._rest(rest_until)
            started = time.monotonic()
            try:
                claimed = self.waiter.wait(WAIT_SECONDS, skip=self._backing_off(outcome))
            except MwJobsError as exc:  # the queue server went away: end as run() does
                log.error("waiting for jobs failed: %s", exc)
                self.emit(RunResult(reached=Reached.EXCEPTION))
                return []
            rest_until = started + WAIT_SECONDS
            early = time.monotonic() < rest_until
            if early and not claimed and self.options.job_type is None:
                self.executor.group.forget_queues_with_jobs()  # a new type may be ready

    def _rest(self, until: float) -> None:
        """Sleep until ``until`` (MediaWiki's second between runs, counted from the start
        of the last wait); SIGTERM ends the rest."""
        self._stop.resting = True
        try:
            if self._stop.requested:
                raise _Interrupted
            left = until - time.monotonic()
            if left > 0:
                time.sleep(left)  # a rate limit, as MediaWiki's sleep
        finally:
            self._stop.resting = False

    def _backing_off(self, outcome: RunResult) -> set[str]:
        """Types whose backoff has not expired: waiting on them would only wake us for jobs
        this process skips."""
        if not self.options.throttle:
            return set()
        now = time.time()
        backoffs = outcome.backoffs or {}
        return {job_type for job_type, until in backoffs.items() if until > now}

    def _settle(self, claimed: list[QueuedJob]) -> None:
        """On the way out: leave the wait; jobs claimed for this process and not run go
        back. What fails here is recycled by the chron."""
        if self.waiter is not None:
            try:
                claimed = claimed + self.waiter.close()
            except MwJobsError as exc:
                log.error("could not leave the wait for jobs: %s", exc)
        try:
            self.executor.hand_back(claimed)
        except MwJobsError as exc:
            log.error("could not hand back %d claimed job(s): %s", len(claimed), exc)
