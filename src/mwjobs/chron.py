"""The jobchron service: keep every queue's jobs moving and publish which queues are ready.

One pass (:meth:`Chron.run_pass`, PHP's ``RedisJobChronService::executePeriodicTasks``) takes a
slot of the chron pool lock, then on each queue partition (in random order) lists
``s-queuesWithJobs`` and runs the maintenance step on every queue (recycle stale claims,
abandon jobs out of attempts, prune old abandoned jobs, release due delayed jobs) with the
per-type claim TTL and attempts of ``limits``. Queues with ready jobs go into the ready-queue
map, which is rewritten at the end; the lock slot is released in a ``finally``.
:class:`ChronService` is the daemon around it: one pass per ``chron_period`` tick (huey's
scheduler: missed ticks are skipped, never caught up), signals handled only in the loop
(gunicorn's rule).

Differences from the PHP jobchron (docs/compatibility.md, "jobchron"): many queues per round
trip instead of one script call and a 5 ms sleep per queue; a down partition is counted and
skipped while the others are served; the lock is released after errors too.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mwjobs.aggregator import ReadyMap, ReadyQueueMap
from mwjobs.config import RunnerConfig, load_config
from mwjobs.daemon import STOP_SIGNALS, SignalInbox
from mwjobs.errors import ConfigError, MwJobsError
from mwjobs.queues.base import Clock, MaintenancePolicy, MaintenanceResult, QueueBackend
from mwjobs.queues.farm import PoolLock, QueueFarm, open_farm

__all__ = [
    "QUEUES_PER_ROUND_TRIP",
    "Chron",
    "ChronService",
    "Counters",
    "PassResult",
    "build_chron",
    "next_tick",
]

log = logging.getLogger(__name__)

# Queues whose maintenance scripts go to a server in one pipelined round trip. Bounds the
# reply held in memory and how long the lock goes without a refresh.
QUEUES_PER_ROUND_TRIP = 1000


class Counters(Protocol):
    """Where the chron counts events (``mwjobs.metrics`` provides statsd and a no-op)."""

    def incr(self, event: str, delta: int = 1) -> None:
        """Add ``delta`` to the counter ``jobrunner.<event>``."""

    def flush(self) -> None:
        """Send what was counted since the last flush."""

    def close(self) -> None:
        """Release the sink's socket, if any."""


@dataclass(frozen=True)
class PassResult:
    """What one pass did. ``claimed`` is False when no lock slot was free (the pass did
    nothing) or the lock could not be reached; ``ok`` is False when anything failed."""

    claimed: bool
    ok: bool
    queues: int = 0
    released: int = 0
    abandoned: int = 0
    pruned: int = 0
    undelayed: int = 0
    ready: Mapping[tuple[str, str], int] = field(default_factory=dict)
    failed_partitions: tuple[str, ...] = ()
    failed_queues: tuple[tuple[str, str], ...] = ()

    @property
    def affected(self) -> int:
        """Jobs whose state changed (the number in the "Updated the state of ..." notice)."""
        return self.released + self.abandoned + self.pruned + self.undelayed


class _Tally:
    """A pass's counts while it runs; becomes a :class:`PassResult`."""

    def __init__(self) -> None:
        # job type -> [released, abandoned, pruned, undelayed], only types that moved jobs
        self.by_type: dict[str, list[int]] = {}
        self.ready: ReadyMap = {}
        self.queues = 0
        self.failed_partitions: list[str] = []
        self.failed_queues: list[tuple[str, str]] = []
        self.other_failure = False  # the map write or the lock release

    def add(self, job_type: str, domain: str, result: MaintenanceResult, now: int) -> None:
        self.queues += 1
        if result.ready > 0:
            self.ready[(job_type, domain)] = now
        if result.affected:  # most queues move nothing; keep the common case cheap
            counts = self.by_type.setdefault(job_type, [0, 0, 0, 0])
            counts[0] += result.released
            counts[1] += result.abandoned
            counts[2] += result.pruned
            counts[3] += result.undelayed

    @property
    def ok(self) -> bool:
        return not (self.failed_partitions or self.failed_queues or self.other_failure)

    def result(self) -> PassResult:
        # Column sums; the zero row makes a pass that moved nothing sum to zeros.
        released, abandoned, pruned, undelayed = (
            sum(column) for column in zip(*self.by_type.values(), [0, 0, 0, 0], strict=True)
        )
        return PassResult(
            claimed=True,
            ok=self.ok,
            queues=self.queues,
            released=released,
            abandoned=abandoned,
            pruned=pruned,
            undelayed=undelayed,
            ready=dict(self.ready),
            failed_partitions=tuple(self.failed_partitions),
            failed_queues=tuple(self.failed_queues),
        )


class Chron:
    """One chron pass at a time over the queue partitions (``partitions``: server name ->
    backend). The chron owns what it is given: :meth:`close` closes the backends, the
    counters and every callable in ``closers``."""

    def __init__(
        self,
        config: RunnerConfig,
        partitions: Mapping[str, QueueBackend],
        aggregator: ReadyQueueMap,
        lock: PoolLock,
        metrics: Counters,
        *,
        clock: Clock = time.time,
        host: str | None = None,
        rng: random.Random | None = None,
        chunk: int = QUEUES_PER_ROUND_TRIP,
        closers: Iterable[Callable[[], None]] = (),
    ) -> None:
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        self.config = config
        self.partitions = dict(partitions)
        self.aggregator = aggregator
        self.lock = lock
        self.metrics = metrics
        self.clock = clock
        self.host = socket.gethostname() if host is None else host
        self.rng = rng or random.Random()
        self.chunk = chunk
        self._closers = tuple(closers)
        self._policies: dict[str, MaintenancePolicy] = {}

    def run_pass(self, now: float | None = None) -> PassResult:
        """One pass at ``now`` (default: the clock). Errors of one partition or queue are
        logged, counted and reported in the result; the others are still served."""
        when = self.clock() if now is None else now
        try:
            slot = self.lock.acquire(when)
        except MwJobsError as exc:
            log.error("Could not take a chron lock slot: %s", exc)
            return self._report(PassResult(claimed=False, ok=False))
        if slot is None:
            self.metrics.incr(f"periodictasks.raced.{self.host}")
            log.info("Raced out of periodic tasks.")
            return PassResult(claimed=False, ok=True)
        self.metrics.incr(f"periodictasks.claimed.{self.host}")
        tally = _Tally()
        started = time.monotonic()
        names = list(self.partitions)
        self.rng.shuffle(names)  # as PHP: spread concurrent chrons over the servers
        try:
            for name in names:
                self._serve_partition(name, self.partitions[name], tally, int(when), slot)
            self._write_map(tally, int(when))
        finally:
            self._release(slot, tally)  # even after an error (the PHP chron leaked it)
        elapsed = time.monotonic() - started
        log.debug("Pass: %d queue(s) on %d partition(s) in %.3f s, %d ready.",
                  tally.queues, len(names), elapsed, len(tally.ready))  # fmt: skip
        self._count_types(tally)
        return self._report(tally.result())

    def _serve_partition(
        self, name: str, backend: QueueBackend, tally: _Tally, now: int, slot: int
    ) -> None:
        try:
            queues = backend.queues_with_jobs()
        except MwJobsError as exc:
            self._partition_failed(name, exc, tally)
            return
        self.rng.shuffle(queues)  # as PHP: no queue is always last
        for start in range(0, len(queues), self.chunk):
            chunk = queues[start : start + self.chunk]
            items = [(job_type, domain, self.policy(job_type)) for job_type, domain in chunk]
            try:
                results = backend.maintain_many(items, now)
            except MwJobsError as exc:  # a backend may fail the whole batch by raising
                results = [exc]
            errors = [result for result in results if isinstance(result, Exception)]
            if len(errors) == len(results):
                # Every queue failing at once is the server, not the queues: stop here.
                self._partition_failed(name, errors[0], tally)
                return
            for (job_type, domain), result in zip(chunk, results, strict=True):
                if isinstance(result, Exception):
                    log.error("Periodic tasks failed for the %r queue of %r on %s: %s",
                              job_type, domain, name, result)  # fmt: skip
                    self.metrics.incr(f"redis-error.{self.host}")
                    tally.failed_queues.append((job_type, domain))
                else:
                    tally.add(job_type, domain, result, now)
            self._refresh(slot)

    def policy(self, job_type: str) -> MaintenancePolicy:
        """The maintenance limits of ``job_type`` (``limits.claimTTL``/``attempts``, else
        their ``"*"``; retention and batch from ``mwjobs.timing``)."""
        policy = self._policies.get(job_type)
        if policy is None:
            limits, timing = self.config.limits, self.config.timing
            policy = MaintenancePolicy(
                claim_ttl=limits.claim_ttl_for(job_type),
                max_attempts=limits.attempts_for(job_type),
                abandoned_retention=timing.abandoned_retention,
                batch=timing.chron_batch,
            )
            self._policies[job_type] = policy
        return policy

    def _partition_failed(self, name: str, exc: BaseException, tally: _Tally) -> None:
        log.error("Queue partition %s failed; skipped until the next pass: %s", name, exc)
        self.metrics.incr(f"redis-error.{self.host}")  # PHP's handleRedisError counted it too
        self.metrics.incr(f"periodictasks.partition-failed.{name}")
        tally.failed_partitions.append(name)

    def _refresh(self, slot: int) -> None:
        try:
            self.lock.refresh(slot, self.clock())
        except MwJobsError as exc:  # the pass goes on; the slot may go stale meanwhile
            log.warning("Could not refresh the chron lock: %s", exc)

    def _write_map(self, tally: _Tally, now: int) -> None:
        # Written even when a partition failed (PHP too): its queues cannot be popped now.
        try:
            self.aggregator.write(tally.ready, now)
        except MwJobsError as exc:
            log.error("Could not update the ready-queue map: %s", exc)
            tally.other_failure = True

    def _release(self, slot: int, tally: _Tally) -> None:
        try:
            if not self.lock.release(slot):
                log.warning("The chron lock slot %d was taken over during the pass.", slot)
        except MwJobsError as exc:
            log.error("Could not release the chron lock (stale in %s s): %s",
                      self.config.timing.pool_lock_ttl, exc)  # fmt: skip
            tally.other_failure = True

    def _count_types(self, tally: _Tally) -> None:
        # One increment per type and pass (PHP sent one per queue; the sums are the same).
        for job_type, (released, abandoned, pruned, undelayed) in tally.by_type.items():
            self.metrics.incr(f"job-recycle.{job_type}", released)
            self.metrics.incr(f"job-abandon.{job_type}", abandoned)
            self.metrics.incr(f"job-undelay.{job_type}", undelayed)
            self.metrics.incr(f"job-prune.{job_type}", pruned)

    def _report(self, result: PassResult) -> PassResult:
        if result.ok:
            self.metrics.incr(f"periodictasks.done.{self.host}")
        else:
            self.metrics.incr(f"periodictasks.failed.{self.host}")
            log.error("Failed to do periodic tasks for some queues.")
        if result.affected:
            log.info("Updated the state of %d job(s) (recycle/undelay/abandon).", result.affected)
        return result

    def close(self) -> None:
        """Close the backends' connections, the counters and the extra resources."""
        for backend in self.partitions.values():
            backend.close()
        for close in self._closers:
            close()
        self.metrics.close()


def build_chron(
    config: RunnerConfig,
    metrics: Counters,
    *,
    clock: Clock = time.time,
    host: str | None = None,
) -> Chron:
    """A chron on the config's queues (:func:`~mwjobs.queues.farm.open_farm`): every
    partition maintained, the ready-queue map and the pool lock where the backend keeps
    them, as many lock slots as partitions (PHP's rule). Nothing connects until the first
    pass."""
    name = socket.gethostname() if host is None else host

    def count_backend_error(_server: str) -> None:
        metrics.incr(f"redis-error.{name}")  # the PHP services' name for any such error

    queues = config.queues
    farm: QueueFarm = open_farm(
        queues.partitions, queues.aggregators, clock=clock, on_error=count_backend_error
    )
    aggregator = ReadyQueueMap(
        farm.ready_map_store(), cache_ttl=config.timing.aggregator_cache_ttl
    )
    lock = farm.pool_lock(ttl=config.timing.pool_lock_ttl)
    return Chron(
        config,
        farm.partitions,
        aggregator,
        lock,
        metrics,
        clock=clock,
        host=name,
        closers=[farm.close],
    )


def next_tick(previous: float, period: float, now: float) -> float:
    """The first tick after ``previous`` on its ``period`` grid that is still ahead of
    ``now``: ticks missed during a long pass are skipped, not run back to back (huey)."""
    tick = previous + period
    if tick <= now:
        tick += (math.floor((now - tick) / period) + 1) * period
    return tick


class ChronService:
    """The ``mwjobs chron`` daemon. ``build`` makes a :class:`Chron` from a config (again on
    SIGHUP); ``memory`` reports the process's memory for the ``memory.<host>`` counter.

    SIGTERM and SIGINT end the loop after the current pass (exit 0, as PHP since T168044);
    SIGHUP reloads the config file (a bad new file is logged and the old config kept).
    """

    def __init__(
        self,
        config_path: str,
        config: RunnerConfig,
        build: Callable[[RunnerConfig], Chron],
        *,
        memory: Callable[[], int] | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.build = build
        self.memory = memory
        self.rng = rng or random.Random()
        self.monotonic = monotonic
        self.chron = build(config)

    def run_once(self) -> int:
        """One pass, then exit: 0 if it succeeded (or another chron held the lock), else 1."""
        try:
            result = self.chron.run_pass()
        finally:
            self.chron.metrics.flush()
            self.chron.close()
        return 0 if result.ok else 1

    def serve(self) -> int:
        """Run passes until SIGTERM/SIGINT; return the exit status (0)."""
        with SignalInbox((*STOP_SIGNALS, signal.SIGHUP)) as inbox:
            log.info("Starting job chron loop(s)...")
            # De-phase chrons started together: a random part of one period (PHP: 0-1 s).
            stop = self._wait(inbox, self.rng.random() * self.config.timing.chron_period)
            if not stop:
                self.chron.metrics.incr(f"start-chron.{self.chron.host}")
            last_memory = self.memory() if self.memory else 0
            tick = self.monotonic()
            while not stop:
                self._pass()
                last_memory = self._count_memory(last_memory)
                self.chron.metrics.flush()
                tick = next_tick(tick, self.config.timing.chron_period, self.monotonic())
                stop = self._wait(inbox, tick - self.monotonic())
        self.chron.metrics.flush()
        self.chron.close()
        log.info("Stopped.")
        return 0

    def _pass(self) -> None:
        try:
            self.chron.run_pass()
        except Exception:  # a bug or an unexpected error: log it, the next tick tries again
            log.exception("Periodic tasks failed")
            self.chron.metrics.incr(f"periodictasks.failed.{self.chron.host}")

    def _count_memory(self, last: int) -> int:
        if self.memory is None:
            return 0
        current = self.memory()
        log.debug("Memory usage: %d bytes.", current)
        self.chron.metrics.incr(f"memory.{self.chron.host}", current - last)
        return current

    def _wait(self, inbox: SignalInbox, seconds: float) -> bool:
        """Sleep up to ``seconds``, handling signals as they come; True when told to stop."""
        deadline = self.monotonic() + seconds
        while True:
            remaining = deadline - self.monotonic()
            for signum in inbox.wait(remaining):
                log.info("Caught signal (%d)", signum)
                if signum in STOP_SIGNALS:
                    return True
                self.reload()
            if remaining <= 0:
                return False

    def reload(self) -> None:
        """Load the config file again and rebuild the chron from it; on any error keep the
        running one (a typo in the file must not stop the chron)."""
        try:
            config = load_config(self.config_path)
            chron = self.build(config)
        except ConfigError as exc:
            log.error("Not reloading, keeping the running configuration: %s", exc)
            return
        except Exception:  # a bug in building: same rule, with the traceback
            log.exception("Not reloading, keeping the running configuration")
            return
        for warning in config.warnings:
            log.warning("%s", warning)
        self.chron.metrics.flush()
        self.chron.close()
        self.config, self.chron = config, chron
        log.info("Reloaded the configuration from %s.", self.config_path)
