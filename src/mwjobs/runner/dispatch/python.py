"""The ``python`` dispatcher: batches run in a pool of long-lived Python worker processes.

Each worker (:mod:`mwjobs.runner.pyworker`) imports the configured job modules once, then
takes (wiki, type, maxtime, maxmem) assignments one at a time and runs each in-process with
:class:`~mwjobs.execution.executor.JobExecutor` against the config's first queue server, as ``mwjobs
run-jobs`` does. It answers with the runJobs JSON document, which the runner parses and counts
exactly like a command dispatcher's stdout. No interpreter starts per batch.

Why ``subprocess`` and pipes rather than :mod:`multiprocessing`: a worker is started exactly
like a command dispatcher's child (``vfork`` + exec, its own process group, no inherited
descriptors), so the runner's guarantees carry over unchanged. A timeout or a shutdown
signals the worker's whole group; while a batch runs, the child guard (``runner/guard.py``)
kills the group if the runner dies, even by SIGKILL; an idle worker blocks on its stdin, reads
EOF when the runner dies in any way, and exits. The protocol is a JSON line per assignment and
a length-prefixed frame per result, read by the runner's own selector. multiprocessing would
add pickling and a resource tracker, "fork" would copy the runner's sockets and selector into
every worker, and "forkserver" adds one more long-lived process that needs guarding too.

Life of a worker: started when the dispatcher is checked (the pool is filled, and
:meth:`PythonDispatcher.check` waits until one worker has imported the modules, so a broken
module stops the runner at start with its error), then idle -> assigned -> result -> idle...
It leaves the pool when:

* its batch was its last (``max_batches`` reached, resident memory above ``max_memory``, a
  batch stopped at its ``limits.memory``, or it was told to stop): it says so (a ``last``
  frame), its stdin is closed, it exits, and the run ends once it has been reaped (a slot is
  busy until its process is gone, as with the command dispatcher);
* it dies (SIGKILL, a crash in C code): the batch in flight is a failed run; the jobs it had
  claimed wait for the chron to recycle them after their claimTTL.

A replacement starts at once, so the next batch finds a warm worker. A worker that cannot
import the job modules after the start (broken code deployed meanwhile) halts the runner
(:class:`DispatchHalt`), as gunicorn halts on a worker boot error, instead of failing every
batch forever. With fewer ``workers`` than slots, a run waits for a free worker (its wall
limit counts from the start).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from mwjobs.config import PythonDispatcherConfig, RunnerConfig, StatsdConfig
from mwjobs.execution.executor import parse_memory_limit
from mwjobs.queues.backends import BackendLocation
from mwjobs.runner.dispatch.base import (
    Dispatcher,
    DispatchError,
    DispatchHalt,
    Run,
    RunOutcome,
    RunRequest,
)
from mwjobs.runner.dispatch.command import describe_status
from mwjobs.runner.pyworker import Assignment, Boot, Frame, FrameReader

__all__ = ["WORKER_ARGV", "PythonDispatcher", "WorkerRun"]

log = logging.getLogger("mwjobs.runner")

WORKER_ARGV = (sys.executable, "-m", "mwjobs.runner.pyworker")
BOOT_TIMEOUT = 60.0  # seconds check() waits for the first worker to import the job modules
CLOSE_WAIT = 2.0  # seconds close() gives idle workers to exit after EOF before SIGKILL
ABANDON_WAIT = 1.0  # seconds abandon() waits for a SIGKILLed worker to be reaped
_READ_CHUNK = 1024 * 1024
DIED = (
    "the python worker died during the batch; the jobs it had claimed are recycled by the "
    "chron after their claimTTL"
)



def _arguments(request: RunRequest) -> str:
    return (f"--wiki={request.domain} --type={request.job_type} --maxtime={request.maxtime} "
            f"--memory-limit={request.maxmem}")  # fmt: skip


class _Worker:
    """One worker process as the pool sees it."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.pid: int = process.pid
        self.stdin_fd = process.stdin.fileno()
        self.out_fd = process.stdout.fileno()
        os.set_blocking(self.out_fd, False)
        self.reader = FrameReader()
        self.ready = False
        self.batches = 0
        self.run: WorkerRun | None = None
        self.retiring = False  # its last batch is done or the pool is closing: it exits
        self.dead = False  # EOF on its frames, a failed write or a bad frame
        self.boot_error: str | None = None
        self.status: int | None = None  # the raw waitpid status once reaped
        self.lost = False  # reaped by someone else: no status
        self.watched: selectors.BaseSelector | None = None

    @property
    def reaped(self) -> bool:
        return self.status is not None or self.lost

    @property
    def free(self) -> bool:
        return self.run is None and not self.retiring and not self.dead

    @property
    def status_text(self) -> str:
        return describe_status(self.status)[0] if self.status is not None else "none"

    def close_stdin(self) -> None:
        stdin = self.process.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.close()

    def close_stdout(self) -> None:
        stdout = self.process.stdout
        if stdout is not None and not stdout.closed:
            stdout.close()

    def signal(self, signum: int) -> None:
        if self.reaped:
            return  # the group id may belong to someone else by now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def try_reap(self) -> bool:
        if not self.reaped:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.lost = True
                self.process.returncode = -1
                return True
            if pid:
                self.status = status
                self.process.returncode = os.waitstatus_to_exitcode(status)
        return self.reaped


class WorkerRun(Run):
    """One batch: waiting for a worker, then in a worker until its result arrives (and,
    after the worker's last batch, until the worker is gone)."""

    def __init__(self, request: RunRequest, pool: PythonDispatcher) -> None:
        super().__init__(request, "waiting for a python worker")
        self.pool = pool
        self.worker: _Worker | None = None
        self.frame: Frame | None = None
        self.until_exit = False  # the worker leaves after this batch: wait for its exit
        self.cancelled: str | None = None  # why it ended before any worker took it
        self.changed = False

    @property
    def wants_poll(self) -> bool:
        return self.changed

    @property
    def in_worker(self) -> bool:
        """Whether the worker's process still belongs to this run."""
        return self.worker is not None and (self.frame is None or self.until_exit)

    def poll(self) -> RunOutcome | None:
        self.changed = False
        if self.cancelled is not None:
            return RunOutcome("cancelled", False, problem=self.cancelled)
        worker = self.worker
        if worker is None:
            return None
        if self.in_worker and not self.pool.reap_worker(worker):
            return None
        return self._ended(worker)

    def _ended(self, worker: _Worker) -> RunOutcome:
        frame = self.frame
        if frame is not None and frame.kind in ("result", "last"):
            return RunOutcome("0", True, frame.payload)
        if frame is not None:  # "error": the batch raised (a bug); the worker was replaced
            return RunOutcome(worker.status_text, False, problem=frame.payload.decode())
        if worker.boot_error is not None:
            problem = f"the python worker could not start: {worker.boot_error}"
            return RunOutcome(worker.status_text, False, problem=problem)
        return RunOutcome(worker.status_text, False, problem=DIED)

    def cancel(self, why: str) -> None:
        self.cancelled = why
        self.changed = True

    def terminate(self) -> None:
        self._stop(signal.SIGTERM)

    def kill(self) -> None:
        self._stop(signal.SIGKILL)

    def _stop(self, signum: int) -> None:
        if self.worker is None:
            self.pool.unqueue(self)
            self.cancel("stopped while waiting for a free python worker")
        elif self.in_worker:
            self.worker.signal(signum)  # the worker's group: what its jobs started too
            self.changed = True

    def abandon(self) -> None:
        self.kill()
        worker = self.worker
        if worker is None or not self.in_worker:
            return
        deadline = time.monotonic() + ABANDON_WAIT
        while not self.pool.reap_worker(worker) and time.monotonic() < deadline:
            time.sleep(0.005)  # SIGKILL was sent; the kernel needs a moment


class PythonDispatcher(Dispatcher):
    """The pool of workers; :meth:`start` hands a batch to a free one."""

    kind = "python"

    def __init__(
        self,
        config: PythonDispatcherConfig,
        queue: BackendLocation,
        size: int,
        *,
        argv: Sequence[str] = WORKER_ARGV,
        env: Mapping[str, str] | None = None,
        verbose: bool | None = None,
        statsd: StatsdConfig | None = None,
    ) -> None:
        if verbose is None:
            verbose = logging.getLogger("mwjobs").isEnabledFor(logging.DEBUG)
        max_memory = parse_memory_limit(config.max_memory) if config.max_memory else None
        self.config = config
        self.size = max(1, size)
        self.boot = Boot(config.modules, config.paths, queue, config.batch, config.max_batches,
                         max_memory, verbose, dict(config.throttling), statsd)  # fmt: skip
        self.argv = list(argv)
        self.env = env
        self.workers: list[_Worker] = []  # every process not reaped yet, leaving ones too
        self.waiting: collections.deque[WorkerRun] = collections.deque()
        self.selector: selectors.BaseSelector | None = None
        self.broken: str | None = None  # why workers can no longer start
        self.closed = False
        self.started = 0  # workers started so far (tests, logs)

    @classmethod
    def from_config(
        cls, config: RunnerConfig, env: Mapping[str, str] | None = None
    ) -> PythonDispatcher:
        """One worker per runner slot unless ``workers`` says otherwise; the jobs live on
        the config's first queue partition (as with ``mwjobs run-jobs --config-file``)."""
        disp = config.dispatcher
        assert isinstance(disp, PythonDispatcherConfig)
        slots = sum(group.runners for group in config.enabled_groups)
        return cls(disp, config.queues.partitions[0], disp.workers or slots, env=env,
                   statsd=config.statsd)  # fmt: skip

    def __repr__(self) -> str:
        return f"<PythonDispatcher {len(self.live)}/{self.size} workers>"

    @property
    def live(self) -> list[_Worker]:
        """Workers that count towards the pool size (not leaving it)."""
        return [w for w in self.workers if not w.retiring and not w.dead]

    def describe(self, request: RunRequest) -> str:
        return f"python worker: {_arguments(request)}"

    # -- start-up -------------------------------------------------------------------------

    def check(self) -> None:
        """Fill the pool and wait until a worker has imported the job modules (workers boot
        in parallel; the others finish in the background). Raises DispatchError, with every
        worker stopped, when none can."""
        try:
            self._fill(raise_errors=True)
            self._wait_for_boot(time.monotonic() + BOOT_TIMEOUT)
        except BaseException:
            self.close()
            raise

    def _wait_for_boot(self, deadline: float) -> None:
        with selectors.DefaultSelector() as waiter:
            for worker in self.workers:
                waiter.register(worker.out_fd, selectors.EVENT_READ, worker)
            while not any(w.ready for w in self.workers):
                if self.broken is not None:
                    raise DispatchError(f"{self.broken}; fix dispatcher.modules or paths")
                if time.monotonic() >= deadline:
                    raise DispatchError(f"no python worker started in {BOOT_TIMEOUT:g} s")
                for key, _ in waiter.select(min(deadline - time.monotonic(), 0.05)):
                    worker = key.data
                    waiter.unregister(worker.out_fd)  # re-registered below while it lives
                    self._read(worker)
                    if not worker.dead:
                        waiter.register(worker.out_fd, selectors.EVENT_READ, worker)

    def _fill(self, *, raise_errors: bool = False) -> None:
        """Start workers until the pool has its size (never once it is closed or broken)."""
        missing = self.size - len(self.live)
        for _ in range(missing):  # bounded: a worker may die as soon as it is started
            if self.closed or self.broken is not None:
                return
            try:
                self._spawn()
            except DispatchError as exc:
                if raise_errors:
                    raise
                log.error("Could not start a python worker: %s", exc)
                return

    def _spawn(self) -> _Worker:
        try:
            process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                process_group=0,  # its own group: signals reach what its jobs start
                close_fds=True,  # never leak the runner's sockets or the guard pipe
                env=self.env,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            raise DispatchError(f"could not start {' '.join(self.argv)}: {exc}") from exc
        worker = _Worker(process)
        self.workers.append(worker)
        self.started += 1
        self._write(worker, self.boot.to_line())
        if self.selector is not None:
            self._watch(worker, self.selector)
        return worker

    # -- the runner's side ----------------------------------------------------------------

    def start(self, request: RunRequest, selector: selectors.BaseSelector) -> WorkerRun:
        if self.selector is not selector:
            self.selector = selector
            for worker in self.workers:
                self._watch(worker, selector)
        self.reap()
        if self.broken is not None:
            raise DispatchHalt(self.broken)
        run = WorkerRun(request, self)
        self.waiting.append(run)
        self._hand_out()
        if run.worker is None and not self.live:
            self.unqueue(run)
            raise DispatchError("no python worker is running and none could be started")
        return run

    def unqueue(self, run: WorkerRun) -> None:
        with contextlib.suppress(ValueError):
            self.waiting.remove(run)

    def reap(self) -> None:
        """Collect workers that exited outside a run (idle deaths, retirements) and top the
        pool up; the runner calls this on SIGCHLD."""
        for worker in list(self.workers):
            if worker.run is None and (worker.dead or worker.retiring):
                self.reap_worker(worker)

    def reap_worker(self, worker: _Worker) -> bool:
        """Reap ``worker`` if it has exited: drop it and top the pool up. True once gone."""
        if worker not in self.workers:
            return True
        if not worker.try_reap():
            return False
        self._read(worker)  # frames it wrote just before it exited
        self.workers.remove(worker)
        self._unwatch(worker)
        worker.close_stdout()
        worker.close_stdin()
        self._log_exit(worker)
        self._settle()
        return True

    def close(self) -> None:
        """Stop the pool: waiting runs are cancelled, idle workers exit (EOF, then SIGKILL
        after ``CLOSE_WAIT``); busy ones finish their batch, then exit."""
        self.closed = True
        while self.waiting:
            self.waiting.popleft().cancel("the python dispatcher was replaced or stopped")
        for worker in self.workers:
            worker.retiring = True
            worker.close_stdin()
        for wait, kill in ((CLOSE_WAIT, True), (ABANDON_WAIT, False)):
            deadline = time.monotonic() + wait
            while self._idle() and time.monotonic() < deadline:
                self.reap()
                time.sleep(0.005)
            for worker in self._idle() if kill else ():
                worker.signal(signal.SIGKILL)

    def _idle(self) -> list[_Worker]:
        return [w for w in self.workers if w.run is None]

    # -- assignments ----------------------------------------------------------------------

    def _settle(self) -> None:
        """Top the pool up and give waiting runs to free workers."""
        self._fill()
        self._hand_out()

    def _hand_out(self) -> None:
        while self.waiting:
            free = [w for w in self.workers if w.free]
            if not free:
                return
            worker = max(free, key=lambda w: w.ready)  # a booting one only if none is ready
            run = self.waiting.popleft()
            if not self._assign(worker, run):
                self.waiting.appendleft(run)  # that worker is dead now; try another

    def _assign(self, worker: _Worker, run: WorkerRun) -> bool:
        request = run.request
        line = Assignment(request.domain, request.job_type, request.maxtime, request.maxmem)
        if not self._write(worker, line.to_line()):
            return False
        worker.run, run.worker, run.pid = run, worker, worker.pid
        run.label = f"python worker {worker.pid}: {_arguments(request)}"
        return True

    def _write(self, worker: _Worker, data: bytes) -> bool:
        """Send a line (far below PIPE_BUF: written whole or not at all)."""
        try:
            os.write(worker.stdin_fd, data)
        except OSError as exc:  # it exited (EPIPE)
            log.warning("Python worker %d does not take work (%s); replacing it.",
                        worker.pid, exc)  # fmt: skip
            self._lose(worker)
            return False
        return True

    # -- frames ---------------------------------------------------------------------------

    def _watch(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        if worker.watched is None and not worker.dead:
            selector.register(worker.out_fd, selectors.EVENT_READ,
                              functools.partial(self._on_readable, worker))  # fmt: skip
            worker.watched = selector

    def _unwatch(self, worker: _Worker) -> None:
        if worker.watched is not None:
            with contextlib.suppress(KeyError, ValueError):
                worker.watched.unregister(worker.out_fd)
            worker.watched = None

    def _on_readable(self, worker: _Worker) -> None:
        """Selector callback: read the worker's frames, then refill the pool."""
        self._read(worker)
        self._settle()

    def _read(self, worker: _Worker) -> None:
        """Take every frame the worker wrote; at EOF it is exiting."""
        stdout = worker.process.stdout
        while stdout is not None and not stdout.closed:
            try:
                chunk = os.read(worker.out_fd, _READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._unwatch(worker)
                worker.close_stdout()
                self._lose(worker)
                return
            try:
                frames = worker.reader.feed(chunk)
            except ValueError as exc:
                log.error("Python worker %d wrote something else than frames (%s); "
                          "killing it.", worker.pid, exc)  # fmt: skip
                worker.signal(signal.SIGKILL)
                self._lose(worker)
                return
            for frame in frames:
                self._frame(worker, frame)

    def _frame(self, worker: _Worker, frame: Frame) -> None:
        if frame.kind == "ready":
            worker.ready = True
        elif frame.kind == "boot-error":
            worker.boot_error = frame.payload.decode(errors="replace")
            self._boot_failed(worker)
        elif frame.kind in ("result", "last", "error"):
            self._batch_done(worker, frame)
        else:
            log.error("Python worker %d sent an unknown frame %r.", worker.pid, frame.kind)

    def _batch_done(self, worker: _Worker, frame: Frame) -> None:
        run, worker.run = worker.run, None
        worker.batches += 1
        leaving = frame.kind != "result" or self.closed
        if run is not None:
            run.frame, run.until_exit, run.changed = frame, leaving, True
            if leaving:
                worker.run = run  # the run ends when the worker is gone
        if leaving:
            worker.retiring = True
            worker.close_stdin()
            if frame.kind == "last":
                log.info("Python worker %d leaves after %d batch(es) (%.0f MiB resident); "
                         "starting a replacement.", worker.pid, worker.batches,
                         frame.rss / 2**20)  # fmt: skip

    # -- endings --------------------------------------------------------------------------

    def _lose(self, worker: _Worker) -> None:
        """The worker can take no more work (it is exiting or misbehaving)."""
        if worker.dead:
            return
        worker.dead = True
        worker.close_stdin()
        if worker.run is not None:
            worker.run.changed = True  # its run ends when the worker is reaped
        if not worker.ready and not worker.retiring:
            self._boot_failed(worker)

    def _boot_failed(self, worker: _Worker) -> None:
        """A worker that never got ready: the job modules do not import (any more)."""
        if self.closed or self.broken is not None:
            return
        why = worker.boot_error or "it exited before it was ready (see its output in the log)"
        self.broken = f"a python worker could not start: {why}"
        log.critical("%s", self.broken)

    def _log_exit(self, worker: _Worker) -> None:
        if self.closed or not worker.ready:
            return
        if worker.run is not None and worker.run.frame is None:
            log.error("Python worker %d died during a batch (status %s); replacing it.",
                      worker.pid, worker.status_text)  # fmt: skip
        elif not worker.retiring:
            log.warning("Python worker %d exited while idle (status %s); replacing it.",
                        worker.pid, worker.status_text)  # fmt: skip
