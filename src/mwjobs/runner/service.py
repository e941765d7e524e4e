"""The jobrunner service: groups of slots that dispatch batches from ready queues.

The shape is gunicorn's arbiter. Signal handlers only record the signal (a byte on a socket,
:class:`~mwjobs.daemon.SignalInbox`). One loop waits on one selector that watches that socket,
the dispatched processes' pipes and a wake-up socket for HTTP runs. Each turn of the loop
(:meth:`Runner.step`) then does the same steps in order:

1. handle the recorded signals (TERM/INT: stop; HUP: reload);
2. reap: collect every run that is completely over and account for it;
3. murder: SIGTERM runs past their wall limit, SIGKILL them ``kill_grace`` later;
4. manage: give each group's free slots a queue (the PHP runner's
   ``JobRunnerPipeline::refillSlots``), with the priority time-sharing of
   :mod:`mwjobs.runner.select`;
5. flush the counters and wait for the next event or deadline.

A child's exit (SIGCHLD, or EOF on its pipes) wakes the loop at once, so a slot is refilled
within a millisecond or two; nothing polls every 100 ms as the PHP runner did. When slots are
free but nothing is ready, the loop sleeps until the ready-queue map may have changed, or
until an mwjobs push names a queue on the wake-up channel of a queue server
(:meth:`~mwjobs.queues.farm.QueueFarm.push_listener`; ``mwjobs.timing.wake_on_push``):
that queue is ready at once, without waiting for the chron's next pass. Pushes by
MediaWiki publish nothing and are found through the map, as before.

Start-up failures (a dispatcher program that does not exist, a missing secret) stop the
service with a message instead of failing every run forever; failures at run time are
logged, counted and retried with a growing pause.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import random
import selectors
import signal
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from mwjobs.aggregator import ReadyMap, ReadyQueueMap
from mwjobs.config import GroupConfig, RunnerConfig, load_config
from mwjobs.daemon import STOP_SIGNALS, SignalInbox
from mwjobs.errors import ConfigError, QueueError
from mwjobs.metrics import counters_for, memory_usage
from mwjobs.queues.farm import PushListener, QueueFarm, open_farm
from mwjobs.runner.dispatch import (
    Dispatcher,
    DispatchError,
    DispatchHalt,
    Run,
    RunOutcome,
    RunRequest,
    build_dispatcher,
)
from mwjobs.runner.guard import ChildGuard
from mwjobs.runner.result import RunSummary, parse_result
from mwjobs.runner.select import PriorityState, Queue, after_refill, candidate_queues, time_share
from mwjobs.runner.slots import Action, Slot, SlotGroup, StopReason, next_deadline, overdue_action

__all__ = ["Counters", "FarmReadySource", "ReadySource", "Runner", "Totals", "Waker"]

log = logging.getLogger("mwjobs.runner")

IDLE_WAIT = 0.1  # the shortest sleep when slots are free but nothing is ready (PHP's sleep)
SHOWN_OUTPUT = 4096  # characters of a failed run's output in the error line (as PHP)
MAX_BACKOFF = 300.0  # longest a "backoffs" entry of a result keeps a type from running
SPAWN_PAUSE_MAX = 10.0  # longest pause after runs repeatedly fail to start
EMPTY_REASONS = ("none-ready", "none-possible")  # the queue had nothing (more) to run
HTTP_ERROR_KINDS = ("timeout", "connect", "status", "protocol")  # counted per wiki
FINAL_REAP = 2.0  # seconds to wait for SIGKILLed runs at shutdown before giving up on them
EXIT_HALT = 1  # the dispatcher can no longer work (as a boot failure: `mwjobs runner` exit 1)
LISTEN_RETRY = 10.0  # seconds before listening for pushes on a server is tried again
PUSH_MEMORY = 60.0  # seconds a woken queue waits for a run before the map alone decides


class Counters(Protocol):
    """Where the runner counts events (``mwjobs.metrics``: statsd or a no-op)."""

    def incr(self, event: str, delta: int = 1) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class ReadySource(Protocol):
    """The ready-queue map (``(type, domain) -> time``), read once per cache period, and
    the wake-ups of pushes to the queues, where the storage offers them."""

    def read(self) -> Mapping[Queue, int]: ...

    def partitions(self) -> list[str]:
        """Names of the partitions that may be listened to (:meth:`push_listener`)."""
        ...

    def push_listener(self, partition: str) -> PushListener | None: ...

    def close(self) -> None: ...


class FarmReadySource:
    """The map and the push wake-ups of the config's queues (:func:`open_farm`)."""

    def __init__(self, config: RunnerConfig, on_error: Callable[[str], None]) -> None:
        queues = config.queues
        self.farm: QueueFarm = open_farm(queues.partitions, queues.aggregators, on_error=on_error)
        # No cache here: the runner keeps its own copy per period (it must know when the
        # copy is new, to end the "lay off" of emptied queues, as PHP's refillSlots does).
        self.map = ReadyQueueMap(self.farm.ready_map_store(), cache_ttl=0.0)

    def read(self) -> ReadyMap:
        return self.map.read()

    def partitions(self) -> list[str]:
        return list(self.farm.partitions)

    def push_listener(self, partition: str) -> PushListener | None:
        return self.farm.push_listener(partition)

    def close(self) -> None:
        self.farm.close()


class Waker:
    """A socket pair the loop watches; :meth:`wake` may be called from any thread."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def wake(self) -> None:
        # full: a wake-up is already pending; closed: shutting down
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._reader.recv(4096):
                pass

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


@dataclass
class Totals:
    """What the runner did since it started (for tests, benchmarks and the stop line)."""

    spawned: int = 0
    finished: int = 0
    errors: int = 0
    timeouts: int = 0
    kills: int = 0
    jobs_ok: int = 0
    jobs_failed: int = 0


SpawnHook = Callable[[Slot, float], None]
FinishHook = Callable[[Slot, RunOutcome, RunSummary, float], None]


class Runner:
    """The ``mwjobs runner`` daemon. Components not given are built from ``config``.

    Use :meth:`serve` to run until SIGTERM/SIGINT. Tests and benchmarks may instead enter
    the runner (``with runner:``) and call :meth:`step` themselves.
    """

    def __init__(
        self,
        config: RunnerConfig,
        *,
        config_path: str | None = None,
        dispatcher: Dispatcher | None = None,
        ready: ReadySource | None = None,
        metrics: Counters | None = None,
        host: str | None = None,
        rng: random.Random | None = None,
        guard: bool = True,
        memory: Callable[[], int] | None = memory_usage,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        on_spawn: SpawnHook | None = None,
        on_finish: FinishHook | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.host = socket.gethostname() if host is None else host
        self.rng = rng or random.Random()
        self.monotonic = monotonic
        self.clock = clock
        self.environ = environ
        self.memory = memory
        self.on_spawn = on_spawn
        self.on_finish = on_finish
        self.waker = Waker()
        try:
            self.dispatcher = dispatcher or self._build_dispatcher(config)
            self.dispatcher.check()  # a boot failure: raise instead of failing every run
        except BaseException:
            self.waker.close()
            raise
        self.metrics: Counters = metrics or counters_for(config.statsd)
        self._own_ready = ready is None
        self.ready: ReadySource = ready or FarmReadySource(config, self._backend_error)
        now = monotonic()
        self.groups = [self._new_group(group, now) for group in config.enabled_groups]
        self.draining: list[SlotGroup] = []  # groups removed by a reload, still running
        self.totals = Totals()
        self.http_errors: collections.Counter[tuple[str, str]] = collections.Counter()
        self.selector = selectors.DefaultSelector()
        self.guard = ChildGuard() if guard else None
        self.inbox: SignalInbox | None = None
        self.stopping = False
        self.finished = False
        self.exit_status = 0
        self._stop_deadline = 0.0
        self._signals: list[int] = []
        self._sigchld = False
        self._ready_map: dict[Queue, int] = {}
        self._listeners: dict[str, tuple[PushListener, int]] = {}  # partition -> it, its fd
        self._listen_at = now  # when to (re)try listening on the servers that have none
        self._refresh_at = now  # the first step reads the map
        self._layoffs: set[Queue] = set()
        # Queues woken by a push since their last run started -> when (monotonic): each gets
        # a run even if a map refresh or the end of an older run would drop it.
        self._pushed: dict[Queue, float] = {}
        self._backoffs: dict[str, float] = {}  # type -> UNIX time it may run again
        self._spawn_pause_until = 0.0
        self._spawn_failures = 0
        self._memory_at = now
        self._memory_last = memory() if memory else 0

    # ------------------------------------------------------------------ life cycle

    def _build_dispatcher(self, config: RunnerConfig) -> Dispatcher:
        return build_dispatcher(config, wake=self.waker.wake, environ=self.environ)

    def _new_group(self, config_group: GroupConfig, now: float) -> SlotGroup:
        # PHP starts each loop in a random priority, so runners started together differ.
        return SlotGroup(config_group, PriorityState(high=self.rng.random() < 0.5, since=now))

    def __enter__(self) -> Runner:
        self.inbox = SignalInbox((*STOP_SIGNALS, signal.SIGHUP, signal.SIGCHLD)).__enter__()
        self.selector.register(self.inbox.fileno(), selectors.EVENT_READ, self._read_signals)
        self.selector.register(self.waker.fileno(), selectors.EVENT_READ, self.waker.drain)
        if self.guard is not None:
            self.guard.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Whatever ended the loop (a stop, a bug), no child is left running."""
        self._stop_listening()
        for group, slot in list(self._busy()):
            assert slot.run is not None
            log.warning("Killing runner in loop %d at slot %d (%s).",
                        self._loop_number(group), slot.index, slot.run.label)  # fmt: skip
            slot.run.abandon()
            self._forget(slot.run)
            group.release(slot)
        if self.guard is not None:
            self.guard.close()
        if self.inbox is not None:
            self.selector.unregister(self.inbox.fileno())
            self.inbox.__exit__(None, None, None)
            self.inbox = None
        self.selector.unregister(self.waker.fileno())

    def close(self) -> None:
        """Release the connections and sockets (after leaving the ``with`` block)."""
        self.dispatcher.close()
        self.ready.close()
        self.metrics.flush()
        self.metrics.close()
        self.selector.close()
        self.waker.close()

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit status (0, as PHP since T168044)."""
        try:
            with self:
                log.info("Starting job spawner loop(s)...")
                for index, group in enumerate(self.groups):
                    log.info("Initialized loop %d with %d runner(s).", index, group.config.runners)
                self.metrics.incr(f"start-runner.{self.host}")
                while not self.finished:
                    self.step()
        finally:
            self.close()
        t = self.totals
        log.info("Stopped after %d run(s): %d job(s) ok, %d failed; %d run error(s), "
                 "%d timeout(s).", t.finished, t.jobs_ok, t.jobs_failed, t.errors,
                 t.timeouts)  # fmt: skip
        return self.exit_status

    def step(self, max_wait: float | None = None) -> None:
        """One turn of the loop: signals, reap, murder, manage, counters, then wait for an
        event or the next deadline (at most ``max_wait`` seconds if given)."""
        self._handle_signals()
        now = self.monotonic()
        self._reap(now)
        self._murder(now)
        if self.stopping:
            self._stop_progress(now)
        else:
            self._listen(now)
            self._manage(now)
        self._count_memory(now)
        self.metrics.flush()
        if self.finished:
            return
        timeout = self._next_wait(self.monotonic())
        if max_wait is not None:
            timeout = max_wait if timeout is None else min(timeout, max_wait)
        self._wait(timeout)

    def _wait(self, timeout: float | None) -> None:
        for key, _ in self.selector.select(timeout):
            key.data()

    # ------------------------------------------------------------------ signals

    def _read_signals(self) -> None:
        assert self.inbox is not None
        for signum in self.inbox.wait(0):
            if signum == signal.SIGCHLD:
                self._sigchld = True  # some child exited: poll the process runs
            else:
                self._signals.append(signum)

    def _handle_signals(self) -> None:
        signals, self._signals = self._signals, []
        for signum in signals:
            log.info("Caught signal (%d)", signum)
            if signum in STOP_SIGNALS:
                self.request_stop()
            elif signum == signal.SIGHUP:
                self.reload()

    def request_stop(self) -> None:
        """Stop starting runs and SIGTERM the running ones; SIGKILL what is left after
        ``stop_grace``. A second request kills at once (a cold stop)."""
        now = self.monotonic()
        if self.stopping:
            self._stop_deadline = now
            return
        self.stopping = True
        self._stop_deadline = now + self.config.timing.stop_grace
        for group, slot in self._busy():
            assert slot.run is not None
            log.info("Sending SIGTERM to loop %d slot %d (%s).",
                     self._loop_number(group), slot.index, slot.run.label)  # fmt: skip
            slot.run.terminate()
            slot.terminated(now, self._stop_deadline, StopReason.SHUTDOWN)

    def halt(self, reason: str) -> None:
        """Stop as after SIGTERM, then exit with :data:`EXIT_HALT`: the dispatcher can no
        longer work (gunicorn's rule for a worker boot error: no respawning forever)."""
        if self.exit_status == EXIT_HALT:
            return  # another group's slot found it too
        log.critical("%s; stopping the runner.", reason)
        self.exit_status = EXIT_HALT
        if not self.stopping:
            self.request_stop()

    def _stop_progress(self, now: float) -> None:
        busy = list(self._busy())
        if not busy:
            self.finished = True
            return
        if now >= self._stop_deadline + FINAL_REAP:
            log.error("%d run(s) did not end after SIGKILL; leaving them.", len(busy))
            self.finished = True
            return
        for _, slot in busy:  # a second signal moved the deadline: kill now
            if slot.kill_at is None or slot.kill_at > self._stop_deadline:
                slot.terminated(now, self._stop_deadline, StopReason.SHUTDOWN)

    # ------------------------------------------------------------------ reload

    def reload(self) -> None:
        """Load the config file again; resize the groups without touching running runs.
        A broken file or dispatcher is logged and the running configuration kept."""
        if self.config_path is None:
            log.warning("No config file to reload.")
            return
        try:
            config = load_config(self.config_path)
            dispatcher = self._build_dispatcher(config)
            dispatcher.check()
        except (ConfigError, DispatchError) as exc:
            log.error("Not reloading, keeping the running configuration: %s", exc)
            return
        for warning in config.warnings:
            log.warning("%s", warning)
        self._apply(config, dispatcher)
        log.info("Reloaded the configuration from %s.", self.config_path)
        for index, group in enumerate(self.groups):
            log.info("Initialized loop %d with %d runner(s).", index, group.config.runners)

    def _apply(self, config: RunnerConfig, dispatcher: Dispatcher) -> None:
        old = self.config
        self.dispatcher.close()  # runs in flight keep what they hold and finish normally
        self.dispatcher = dispatcher
        if self._own_ready and config.queues != old.queues:
            self.ready.close()
            self.ready = FarmReadySource(config, self._backend_error)
        if config.statsd != old.statsd:
            self.metrics.flush()
            self.metrics.close()
            self.metrics = counters_for(config.statsd)
        self.config = config
        self._regroup(config, self.monotonic())
        self._refresh_at = self.monotonic()
        self._stop_listening()  # the next step listens on the new servers, if enabled

    def _regroup(self, config: RunnerConfig, now: float) -> None:
        """Groups are matched by name; a removed group drains (its runs finish)."""
        old = {group.name: group for group in self.groups}
        groups: list[SlotGroup] = []
        for group_config in config.enabled_groups:
            group = old.pop(group_config.name, None)
            if group is None:
                group = self._new_group(group_config, now)
            else:
                group.config = group_config
                group.resize(group_config.runners)
            groups.append(group)
        for group in old.values():
            group.resize(0)
            if group.slots:
                self.draining.append(group)
        self.groups = groups

    # ------------------------------------------------------------------ reap

    def _all_groups(self) -> list[SlotGroup]:
        return [*self.groups, *self.draining]

    def _busy(self) -> Iterator[tuple[SlotGroup, Slot]]:
        for group in self._all_groups():
            for slot in group.busy_slots():
                yield group, slot

    def _loop_number(self, group: SlotGroup) -> int:
        """The PHP log's "loop" number: the group's position (draining groups follow)."""
        return self._all_groups().index(group)

    def _reap(self, now: float) -> None:
        poll_all, self._sigchld = self._sigchld, False
        if poll_all:
            self.dispatcher.reap()  # pooled processes that exited outside a run
        for group, slot in list(self._busy()):
            run = slot.run
            assert run is not None
            if not (poll_all or run.wants_poll):
                continue
            outcome = run.poll()
            if outcome is not None:
                self._finished(group, slot, run, outcome, now)
        self.draining = [group for group in self.draining if group.slots]

    def _finished(
        self, group: SlotGroup, slot: Slot, run: Run, outcome: RunOutcome, now: float
    ) -> None:
        self._forget(run)
        elapsed = now - slot.started
        result = parse_result(outcome.stdout)
        request = run.request
        self.totals.finished += 1
        if result.valid:
            self._count_jobs(request, result)
        if outcome.succeeded and result.valid:
            self._finished_well(group, slot, run, result, elapsed)
        elif slot.reason is not None:
            log.warning("Runner loop %d process in slot %d ended with status '%s' after "
                        "%s (%.1fs):\n%s", self._loop_number(group), slot.index,
                        outcome.status, "a timeout" if slot.reason is StopReason.TIMEOUT
                        else "SIGTERM", elapsed, run.label)  # fmt: skip
        else:
            self._failed(group, slot, run, outcome, result)
        if outcome.error_kind in HTTP_ERROR_KINDS and slot.reason is not StopReason.SHUTDOWN:
            self._count_http_error(request.domain, outcome.error_kind or "")
        if self.on_finish is not None:
            self.on_finish(slot, outcome, result, now)
        group.release(slot)

    def _count_jobs(self, request: RunRequest, result: RunSummary) -> None:
        self.metrics.incr(f"pop.{request.job_type}.ok.{self.host}", result.ok)
        self.metrics.incr(f"pop.{request.job_type}.failed.{self.host}", result.failed)
        self.totals.jobs_ok += result.ok
        self.totals.jobs_failed += result.failed
        wall = self.clock()
        for job_type, expiry in result.backoffs.items():
            # runJobs throttles this type until then: starting it sooner only wastes a run
            if expiry > wall:
                until = min(expiry, wall + MAX_BACKOFF)
                self._backoffs[job_type] = max(self._backoffs.get(job_type, 0.0), until)

    def _finished_well(
        self, group: SlotGroup, slot: Slot, run: Run, result: RunSummary, elapsed: float
    ) -> None:
        request = run.request
        queue = (request.job_type, request.domain)
        early = elapsed < self.config.timing.hp_max_time / 2
        # A push woke the queue after this run started: its last pop may have missed it.
        if (early or result.reached in EMPTY_REASONS) and queue not in self._pushed:
            # PHP's rule: a run that ended early has emptied its queue; lay off it until the
            # next map refresh (the map is only as fresh as the last chron pass).
            self._layoffs.add(queue)
            log.debug("Queue '%s/%s' emptied.", request.domain, request.job_type)
        log.debug("Run done: loop=%d slot=%d type=%s db=%s ok=%d failed=%d reached=%s "
                  "time=%.3fs", self._loop_number(group), slot.index, request.job_type,
                  request.domain, result.ok, result.failed, result.reached,
                  elapsed)  # fmt: skip

    def _failed(
        self, group: SlotGroup, slot: Slot, run: Run, outcome: RunOutcome, result: RunSummary
    ) -> None:
        self.totals.errors += 1
        stat = "runner-status.none" if outcome.error_kind == "none" else "runner-status.error"
        self.metrics.incr(stat)
        detail = ""
        if outcome.problem:
            detail += f"{outcome.problem}\n"
        if outcome.succeeded and result.error:
            detail += f"{result.error}\n"
        label, output = ("STDERR", outcome.stderr) if outcome.stderr else ("STDOUT", outcome.stdout)
        text = output.decode("utf-8", "replace")
        if len(text) > SHOWN_OUTPUT:
            text = text[:SHOWN_OUTPUT] + "..."
        log.error("Runner loop %d process in slot %d gave status '%s':\n%s%s %s:\n\t%s",
                  self._loop_number(group), slot.index, outcome.status, detail, run.label,
                  label, text)  # fmt: skip

    def _count_http_error(self, domain: str, kind: str) -> None:
        self.http_errors[(domain, kind)] += 1
        self.metrics.incr(f"http-error.{kind}.{domain}")
        log.warning("HTTP %s errors for %s so far: %d.", kind, domain,
                    self.http_errors[(domain, kind)])  # fmt: skip

    def _forget(self, run: Run) -> None:
        if self.guard is not None and run.pid is not None:
            self.guard.forget(run.pid)

    # ------------------------------------------------------------------ murder

    def _murder(self, now: float) -> None:
        grace = self.config.timing.kill_grace
        for group, slot in self._busy():
            action = overdue_action(slot, now)
            run = slot.run
            assert run is not None
            loop = self._loop_number(group)
            if action is Action.TERMINATE:
                log.error("Runner loop %d process in slot %d timed out [%ds; max: %ds]:\n%s",
                          loop, slot.index, int(now - slot.started), int(run.request.limit),
                          run.label)  # fmt: skip
                run.terminate()
                slot.terminated(now, now + grace, StopReason.TIMEOUT)
                self.metrics.incr("runner-status.timeout")
                self.totals.timeouts += 1
            elif action is Action.KILL:
                self._kill(loop, slot, run, now)

    def _kill(self, loop: int, slot: Slot, run: Run, now: float) -> None:
        if slot.reason is StopReason.TIMEOUT:
            log.error("Runner loop %d process in slot %d timed out [%ds; max: %ds]: "
                      "sent SIGKILL.", loop, slot.index, int(now - slot.started),
                      int(run.request.limit))  # fmt: skip
            self.metrics.incr("runner-status.kill")
        else:
            log.warning("Runner loop %d process in slot %d did not stop after SIGTERM: "
                        "sent SIGKILL.", loop, slot.index)  # fmt: skip
        run.kill()
        slot.killed = True
        self.totals.kills += 1

    # ------------------------------------------------------------------ manage

    def _pending(self, now: float) -> list[Queue]:
        """The ready queues a slot may take now: the map (re-read once per cache period;
        a new copy ends the lay-offs), minus laid-off queues and backed-off types."""
        if now >= self._refresh_at:
            self._ready_map = dict(self.ready.read())
            self._layoffs.clear()
            self._pushed = {q: t for q, t in self._pushed.items() if now - t < PUSH_MEMORY}
            since = int(self.clock())
            for queue in self._pushed:  # newer than the chron's last pass, maybe
                self._ready_map.setdefault(queue, since)
            self._refresh_at = now + self.config.timing.aggregator_cache_ttl
        wall = self.clock()
        self._backoffs = {t: until for t, until in self._backoffs.items() if until > wall}
        return [
            queue
            for queue in self._ready_map
            if queue not in self._layoffs and queue[0] not in self._backoffs
        ]

    def _manage(self, now: float) -> None:
        """Fill free slots (``RedisJobRunnerService::main``'s loop) and count what happened."""
        if now < self._spawn_pause_until:
            return
        pending = self._pending(now)
        if not pending:
            self.metrics.incr(f"idle.{self.host}")
            return
        spawned = switches = free_total = 0
        for index, group in enumerate(self.groups):
            before = group.priority.switches
            group.priority = time_share(group.priority, now, self.config.timing)
            free, new = self._refill(index, group, pending, now)
            group.priority = after_refill(group.priority, free, new, now)
            switches += group.priority.switches - before
            spawned += new
            free_total += free
        self.metrics.incr(f"spawn.{self.host}", spawned)
        self.metrics.incr(f"prioritychange.{self.host}", switches)
        if free_total == 0:
            self.metrics.incr(f"all-full.{self.host}")
        elif spawned == 0:
            self.metrics.incr(f"some-full.{self.host}")

    def _refill(
        self, index: int, group: SlotGroup, pending: list[Queue], now: float
    ) -> tuple[int, int]:
        """PHP's ``refillSlots``: each free slot gets a uniformly random eligible queue; stop
        at the first slot for which there is none. Returns (free slots seen, runs started)."""
        free = new = 0
        candidates: list[Queue] | None = None
        for slot in group.free_slots():
            free += 1
            if candidates is None:
                candidates = candidate_queues(group.config, group.priority.high, pending)
            if not candidates:
                break
            if not self._spawn(index, group, slot, self.rng.choice(candidates), now):
                break
            new += 1
        return free, new

    def _spawn(self, index: int, group: SlotGroup, slot: Slot, queue: Queue, now: float) -> bool:
        job_type, domain = queue
        limits, timing = self.config.limits, self.config.timing
        high = group.priority.high
        request = RunRequest(
            job_type=job_type,
            domain=domain,
            maxtime=timing.maxtime_for(high),
            maxmem=limits.memory_for(job_type),
            limit=self.dispatcher.timeout or float(limits.real_for(job_type)),
        )
        try:
            run = self.dispatcher.start(request, self.selector)
        except DispatchHalt as exc:
            self.halt(str(exc))
            return False
        except DispatchError as exc:
            log.error("Could not spawn process in loop %d: %s", index, exc)
            self.metrics.incr("runner-status.error")
            self.totals.errors += 1
            self._pause_spawning(now)
            return False
        self._spawn_failures = 0
        self._pushed.pop(queue, None)  # this run will see what the push brought
        slot.assign(run, now, high)
        if self.guard is not None and run.pid is not None:
            self.guard.watch(run.pid)
        self.totals.spawned += 1
        log.debug("Spawning runner in loop %d at slot %d (%s, %s):\n\t%s.",
                  index, slot.index, job_type, domain, run.label)  # fmt: skip
        if self.on_spawn is not None:
            self.on_spawn(slot, now)
        return True

    def _pause_spawning(self, now: float) -> None:
        """Runs fail to start (a missing program, no processes left): wait 0.1 s, doubling
        up to 10 s, instead of failing in a tight loop."""
        self._spawn_failures += 1
        pause = min(0.1 * 2 ** (self._spawn_failures - 1), SPAWN_PAUSE_MAX)
        self._spawn_pause_until = now + pause

    # ------------------------------------------------------------------ push wake-ups

    def _listen(self, now: float) -> None:
        """Listen for mwjobs pushes on every queue server (only with the map read from
        the config's servers, and ``wake_on_push``); a server that fails is tried again
        ``LISTEN_RETRY`` seconds later."""
        if not (self._own_ready and self.config.timing.wake_on_push) or now < self._listen_at:
            return
        for partition in self.ready.partitions():
            if partition in self._listeners:
                continue
            listener = self.ready.push_listener(partition)
            if listener is None:  # this backend cannot tell: the map alone finds its jobs
                continue
            try:
                fd = listener.fileno()
            except QueueError as exc:
                listener.close()
                log.warning("Not woken by pushes to %s for now: %s", partition, exc)
                self._listen_at = now + LISTEN_RETRY
                continue
            self.selector.register(fd, selectors.EVENT_READ,
                                   functools.partial(self._on_push, listener))  # fmt: skip
            self._listeners[partition] = (listener, fd)

    def _on_push(self, listener: PushListener) -> None:
        """Selector callback: queues that just got ready jobs may run now (even if a run
        emptied them a moment ago)."""
        try:
            queues = listener.poll()
        except QueueError as exc:
            log.warning("%s; listening again in %g s.", exc, LISTEN_RETRY)
            self._drop_listener(listener)
            self._listen_at = self.monotonic() + LISTEN_RETRY
            return
        self.pushed(queues)

    def pushed(self, queues: Iterable[Queue]) -> None:
        """These queues just got ready jobs: each gets a run, even if a map refresh (the
        chron may not have seen them yet) or the end of a run that started before the push
        comes first."""
        since, now = int(self.clock()), self.monotonic()
        for queue in queues:
            self._ready_map[queue] = since
            self._layoffs.discard(queue)
            self._pushed[queue] = now

    def _drop_listener(self, listener: PushListener) -> None:
        _, fd = self._listeners.pop(listener.name, (listener, -1))
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(fd)  # before closing: the number may be reused at once
        listener.close()

    def _stop_listening(self) -> None:
        for listener, _ in list(self._listeners.values()):
            self._drop_listener(listener)

    # ------------------------------------------------------------------ waiting

    def _next_wait(self, now: float) -> float | None:
        """Seconds until something is due: a SIGTERM/SIGKILL deadline, the shutdown
        deadline, or (with free slots) the next read of the ready-queue map."""
        deadlines = [d for _, slot in self._busy() if (d := next_deadline(slot)) is not None]
        if self.stopping:
            deadlines.append(self._stop_deadline + FINAL_REAP)
        elif any(group.free_slots() for group in self.groups):
            refresh = max(self._refresh_at, self._spawn_pause_until, now + IDLE_WAIT)
            deadlines.append(refresh)
        if not deadlines:
            return None  # everything is busy without a limit, or there is no slot at all
        return max(min(deadlines) - now, 0.0)

    def _count_memory(self, now: float) -> None:
        if self.memory is None or now - self._memory_at < 1.0:
            return  # once a second is plenty (PHP: once per 100 ms iteration)
        current = self.memory()
        self.metrics.incr(f"memory.{self.host}", current - self._memory_last)
        self._memory_last, self._memory_at = current, now

    def _backend_error(self, _server: str) -> None:
        self.metrics.incr(f"redis-error.{self.host}")
