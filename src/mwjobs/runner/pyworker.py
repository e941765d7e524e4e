"""The python dispatcher's worker process: ``python -m mwjobs.runner.pyworker``.

The runner (:mod:`mwjobs.runner.dispatch.python`) starts it and talks to it over two pipes:

* **stdin**, lines of JSON from the runner: first the :class:`Boot` message (job modules,
  queue server, claim batch size, recycling limits, the runner's statsd for per-job
  metrics), then one :class:`Assignment` per batch (wiki, type, maxtime, maxmem). EOF means
  "exit": the runner is recycling the worker, is stopping, or is gone.
* **the original stdout**, frames to the runner, ``<kind> <rss> <length>\\n<payload>``:
  ``ready`` (the modules are imported), ``boot-error`` (payload: why not), ``result`` (payload:
  the batch's runJobs JSON document, exactly as ``mwjobs run-jobs --result=json`` prints it),
  ``last`` (the same, and the worker exits now: it is worn out or was told to stop) and
  ``error`` (payload: an unexpected exception; the worker exits after it). ``rss`` is the
  worker's resident memory in bytes.

At start the worker moves stdout aside: the frame pipe keeps a private descriptor and fd 1
points to stderr, so whatever job code prints lands in the runner's log, never in a frame.

SIGTERM (the runner's wall limit or its shutdown): the current job finishes, the batch ends as
``time-limit`` (claimed jobs not run yet are handed back), its result goes out as ``last`` and
the worker exits; a second SIGTERM kills it at once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType
from typing import Any, BinaryIO

from mwjobs.config import StatsdConfig
from mwjobs.execution.backoff import BackoffFile
from mwjobs.execution.executor import (
    JobExecutor,
    Reached,
    RunOptions,
    RunResult,
    describe_exception,
    parse_memory_limit,
    resident_memory,
)
from mwjobs.group import JobQueueGroup
from mwjobs.metrics import job_metrics_for
from mwjobs.model.registry import import_job_modules
from mwjobs.queues.backends import BackendLocation, open_backend
from mwjobs.servicelog import PhpStyleFormatter

__all__ = [
    "EXIT_BOOT",
    "EXIT_ERROR",
    "Assignment",
    "Boot",
    "Frame",
    "FrameReader",
    "encode_frame",
    "main",
]

log = logging.getLogger(__name__)

EXIT_ERROR = 1  # a batch raised something the executor does not catch (a bug): replace me
EXIT_BOOT = 3  # could not start (bad boot message, a job module that does not import), as
# gunicorn's WORKER_BOOT_ERROR: the runner halts instead of starting workers forever
MAX_HEADER = 64  # bytes of a frame header line, newline included


@dataclass(frozen=True)
class Boot:
    """The first line the runner sends: what every batch of this worker needs."""

    modules: tuple[str, ...]
    paths: tuple[str, ...]
    queue: BackendLocation  # sent over the pipe, not argv: it may carry a password
    batch: int = 10
    max_batches: int = 1000
    max_memory: int | None = None  # bytes; None: no limit besides the batches' own
    verbose: bool = False
    throttling: dict[str, float] = dataclasses.field(default_factory=dict)
    statsd: StatsdConfig | None = None  # the runner's: JobRunner::executeJob's metrics go there

    def to_line(self) -> bytes:
        data = dataclasses.asdict(self)
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Boot:
        data: dict[str, Any] = json.loads(line)
        data["modules"] = tuple(data["modules"])
        data["paths"] = tuple(data["paths"])
        data["queue"] = BackendLocation(**data["queue"])
        if data.get("statsd") is not None:
            data["statsd"] = StatsdConfig(**data["statsd"])
        return cls(**data)


@dataclass(frozen=True)
class Assignment:
    """One batch: run jobs of ``job_type`` on ``domain`` for at most ``maxtime`` seconds."""

    domain: str
    job_type: str
    maxtime: int
    maxmem: str  # a PHP memory string, as limits.memory gives it

    def to_line(self) -> bytes:
        data = {"domain": self.domain, "type": self.job_type, "maxtime": self.maxtime,
                "maxmem": self.maxmem}  # fmt: skip
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Assignment:
        data = json.loads(line)
        return cls(data["domain"], data["type"], int(data["maxtime"]), str(data["maxmem"]))


@dataclass(frozen=True)
class Frame:
    kind: str
    rss: int
    payload: bytes


def encode_frame(kind: str, payload: bytes = b"", rss: int = 0) -> bytes:
    return b"%s %d %d\n" % (kind.encode(), rss, len(payload)) + payload


class FrameReader:
    """Splits what is read from a worker into frames (a frame may arrive in pieces).
    :meth:`feed` raises ValueError on bytes that are not frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while True:
            end = self._buffer.find(b"\n", 0, MAX_HEADER)
            if end < 0:
                if len(self._buffer) >= MAX_HEADER:
                    raise ValueError(f"not a frame header: {bytes(self._buffer[:40])!r}")
                return frames
            kind, rss, length = _header(bytes(self._buffer[:end]))
            start = end + 1
            if len(self._buffer) < start + length:
                return frames
            frames.append(Frame(kind, rss, bytes(self._buffer[start : start + length])))
            del self._buffer[: start + length]


def _header(line: bytes) -> tuple[str, int, int]:
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError(f"not a frame header: {line!r}")
    return parts[0].decode("ascii", "replace"), int(parts[1]), int(parts[2])


# -- the worker side ---------------------------------------------------------------------


class _StopFlag:
    """SIGTERM: remember it (the executor asks after each job); a second one kills."""

    def __init__(self) -> None:
        self.requested = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def __call__(self) -> bool:
        return self.requested


class Worker:
    """Runs assignments with one executor per wiki on one queue server."""

    def __init__(self, boot: Boot, should_stop: _StopFlag) -> None:
        self.boot = boot
        self.backend = open_backend(boot.queue)
        self.backoffs = BackoffFile()  # the host's file, shared with run-jobs and runJobs.php
        self.metrics = job_metrics_for(boot.statsd)
        self.should_stop = should_stop
        self.batches = 0
        self._executors: dict[str, JobExecutor] = {}

    def executor(self, domain: str) -> JobExecutor:
        executor = self._executors.get(domain)
        if executor is None:
            group = JobQueueGroup(self.backend, domain)
            executor = JobExecutor(
                group,
                throttling=self.boot.throttling,
                backoffs=self.backoffs,
                should_stop=self.should_stop,
                metrics=self.metrics,
            )
            self._executors[domain] = executor
        return executor

    def run(self, assignment: Assignment) -> RunResult:
        try:
            memory_limit = parse_memory_limit(assignment.maxmem)
        except ValueError:
            memory_limit = None  # the config checked it; never fail a batch over it
        options = RunOptions(
            job_type=assignment.job_type,
            max_time=assignment.maxtime,
            memory_limit=memory_limit,
            batch=self.boot.batch,
        )
        self.batches += 1
        return self.executor(assignment.domain).run(options)

    def worn_out(self, result: RunResult, rss: int) -> bool:
        """Whether this was the last batch: told to stop, enough batches, or too big."""
        limit = self.boot.max_memory
        return (
            self.should_stop()
            or self.batches >= self.boot.max_batches
            or result.reached == Reached.MEMORY_LIMIT
            or (limit is not None and rss > limit)
        )

    def close(self) -> None:
        self.backend.close()
        if self.metrics is not None:
            self.metrics.close()


def _send(channel: int, frame: bytes) -> None:
    view = memoryview(frame)
    while view:
        written = os.write(channel, view)
        view = view[written:]


def serve(worker: Worker, lines: Iterable[bytes], channel: int) -> int:
    """Run assignments until EOF or a last batch; the exit status."""
    try:
        for line in lines:
            try:
                result = worker.run(Assignment.from_line(line))
            except Exception as exc:  # a bug: report it and let the runner start a fresh worker
                log.exception("python worker: the batch failed")
                _send(channel, encode_frame("error", describe_exception(exc).encode()))
                return EXIT_ERROR
            rss = resident_memory()
            last = worker.worn_out(result, rss)
            _send(channel, encode_frame("last" if last else "result", result.to_json().encode(),
                                        rss))  # fmt: skip
            if last:
                break
    finally:
        worker.close()
    return 0


class _WorkerFormatter(PhpStyleFormatter):
    """The service log format with ``python worker <pid>:`` after the level."""

    def format(self, record: logging.LogRecord) -> str:
        stamp_level, sep, rest = super().format(record).partition(": ")
        return f"{stamp_level}{sep}python worker {os.getpid()}: {rest}"


def _configure_logging(verbose: bool) -> None:
    """Warnings and errors (a failed job's traceback) to stderr, the runner's log; with the
    runner's ``--verbose``, runJobs' per-job lines too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_WorkerFormatter())
    root = logging.getLogger("mwjobs")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


def main() -> int:
    # The frame pipe gets a private descriptor; fd 1 (print, C extensions) goes to stderr.
    channel = os.dup(1)
    os.dup2(2, 1)
    stop = _StopFlag()
    signal.signal(signal.SIGTERM, stop.handle)
    stdin: BinaryIO = sys.stdin.buffer
    try:
        boot = Boot.from_line(stdin.readline())
        _configure_logging(boot.verbose)
        import_job_modules(boot.modules, boot.paths)
        worker = Worker(boot, stop)
    except (Exception, SystemExit) as exc:  # a module may even call sys.exit() on import
        _send(channel, encode_frame("boot-error", describe_exception(exc).encode()))
        return EXIT_BOOT
    try:
        _send(channel, encode_frame("ready", rss=resident_memory()))
        return serve(worker, stdin, channel)
    except BrokenPipeError:  # the runner is gone: nobody to report to
        return 0


if __name__ == "__main__":
    sys.exit(main())
