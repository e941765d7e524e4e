"""The ``command`` dispatcher: one process per batch, e.g. ``php runJobs.php --result=json``.

The template is an argv list (config.py splits the original string form); each placeholder
value is substituted inside its own element, so ``%(db)x`` can never become two arguments or
shell syntax. ``shell: true`` configs run ``/bin/sh -c`` with PHP's quoting instead.

Each process is the leader of a new process group (``process_group=0``), so a timeout or a
shutdown signals everything it started. Its stdout and stderr are non-blocking pipes that the
loop's selector reads until EOF, however much is written (the PHP runner read at most 64 KiB
per stream per loop and lost the rest: ``JobRunnerPipeline::refillSlots``). The run is over
only when the leader is reaped *and* both pipes are at EOF, so a slot stays busy while anything
the run started still holds its output open (after the wall limit's SIGKILL to the group, a
holder outside the group is no longer waited for).
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from typing import IO

from mwjobs.config import CommandDispatcherConfig
from mwjobs.runner.dispatch.base import (
    Dispatcher,
    DispatchError,
    Run,
    RunOutcome,
    RunRequest,
    escapeshellarg,
    substitute,
)

__all__ = ["MAX_OUTPUT", "CommandDispatcher", "ProcessRun", "describe_status"]

MAX_OUTPUT = 64 * 1024 * 1024  # bytes kept per stream; a runJobs result is a few KiB per job
_READ_CHUNK = 1024 * 1024
_SHELL = "/bin/sh"


def describe_status(wait_status: int) -> tuple[str, bool]:
    """``("1", False)``, ``("signal 9 (SIGKILL)", False)``, ``("0", True)`` from a raw
    ``waitpid`` status (decoded with the W* macros, never ``>> 8``)."""
    if os.WIFSIGNALED(wait_status):
        signum = os.WTERMSIG(wait_status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = "unknown"
        return f"signal {signum} ({name})", False
    code = os.waitstatus_to_exitcode(wait_status)
    return str(code), code == 0


class ProcessRun(Run):
    """A dispatched process: its pipes are watched by the loop's selector."""

    def __init__(
        self,
        request: RunRequest,
        label: str,
        argv: list[str],
        selector: selectors.BaseSelector,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(request, label)
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,  # its own group: signals reach everything it starts
                close_fds=True,  # never leak the runner's sockets or the guard pipe
                env=env,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            raise DispatchError(f"could not start {label}: {exc}") from exc
        self.pid: int = self.process.pid
        self._selector = selector
        self._buffers: dict[int, bytearray] = {}  # stdout's first, then stderr's
        self._open: dict[int, IO[bytes]] = {}  # pipes not yet at EOF
        self._dropped = 0  # bytes over MAX_OUTPUT
        self._wait_status: int | None = None
        self._lost = False  # reaped by someone else: no status (PHP's runner-status.none)
        self._changed = False
        self._killed = False
        self._held_open = False  # pipes closed by us: held by a process outside the group
        for stream in (self.process.stdout, self.process.stderr):
            assert stream is not None
            fd = stream.fileno()
            os.set_blocking(fd, False)
            self._buffers[fd] = bytearray()
            self._open[fd] = stream
            selector.register(fd, selectors.EVENT_READ, functools.partial(self._read, fd))

    @property
    def wants_poll(self) -> bool:
        return self._changed

    def _read(self, fd: int) -> None:
        """Selector callback: take everything the pipe holds; at EOF stop watching it."""
        buffer = self._buffers[fd]
        while True:
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""  # a broken pipe ends the stream like EOF
            if not chunk:
                self._close(fd)
                return
            room = max(MAX_OUTPUT - len(buffer), 0)
            if len(chunk) > room:  # keep reading to EOF, but bound the memory
                self._dropped += len(chunk) - room
                chunk = chunk[:room]
            buffer += chunk

    def _close(self, fd: int) -> None:
        stream = self._open.pop(fd, None)
        if stream is None:
            return
        self._selector.unregister(fd)  # before closing: the fd number may be reused at once
        stream.close()
        self._changed = True

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self._lost = True
            self.process.returncode = -1
            return
        if pid:
            self._wait_status = status
            self.process.returncode = os.waitstatus_to_exitcode(status)

    @property
    def reaped(self) -> bool:
        return self._wait_status is not None or self._lost

    def poll(self) -> RunOutcome | None:
        self._changed = False
        if not self.reaped:
            self._reap()
            if not self.reaped:
                return None
        for fd in list(self._open):  # the rest of the output is in the pipe now
            self._read(fd)
        if self._open and self._killed:
            # SIGKILL went to the whole group and the leader is gone: what still holds the
            # pipes left the group (setsid). Stop waiting for it, or the slot never frees.
            self._held_open = True
            for fd in list(self._open):
                self._close(fd)
        if self._open:
            return None  # something the run started still holds its output open
        return self._outcome()

    def _outcome(self) -> RunOutcome:
        stdout, stderr = (bytes(buffer) for buffer in self._buffers.values())
        problems = []
        if self._dropped:
            problems.append(f"{self._dropped} bytes of output over {MAX_OUTPUT} were dropped")
        if self._held_open:
            problems.append("its output was still held open by a process outside its group")
        problem = "; ".join(problems) or None
        if self._wait_status is None:
            return RunOutcome("none", False, stdout, stderr, "the exit status was lost", "none")
        status, succeeded = describe_status(self._wait_status)
        return RunOutcome(status, succeeded, stdout, stderr, problem)

    def _signal_group(self, signum: int) -> None:
        if self.reaped and not self._open:
            return  # nothing of it is left; the group id may belong to someone else by now
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(self.pid, signum)

    def terminate(self) -> None:
        self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        self._killed = True
        self._changed = True  # poll again: the pipes may be closed now
        self._signal_group(signal.SIGKILL)

    def abandon(self) -> None:
        self.kill()
        for fd in list(self._open):
            self._close(fd)
        deadline = time.monotonic() + 1.0
        while not self.reaped and time.monotonic() < deadline:
            self._reap()
            if not self.reaped:
                time.sleep(0.005)  # SIGKILL was sent; the kernel needs a moment


class CommandDispatcher(Dispatcher):
    """Runs the configured command per batch."""

    kind = "command"

    def __init__(
        self, config: CommandDispatcherConfig, env: Mapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.env = env

    def argv_for(self, request: RunRequest) -> list[str]:
        """The argv of a run: one element per template element, values substituted inside."""
        values = request.values()
        if self.config.shell:
            assert self.config.template is not None
            return [_SHELL, "-c", substitute(self.config.template, values, escapeshellarg)]
        return [substitute(arg, values) for arg in self.config.argv]

    def describe(self, request: RunRequest) -> str:
        argv = self.argv_for(request)
        return argv[2] if self.config.shell else shlex.join(argv)

    def check(self) -> None:
        program = _SHELL if self.config.shell else self.config.argv[0]
        if "%(" in program:
            return  # depends on the queue; a failure shows per run
        found = shutil.which(program)
        if found is None:
            raise DispatchError(
                f"the dispatcher program {program!r} is not found or not executable "
                f"(PATH={os.environ.get('PATH', '')}); fix dispatcher in the config"
            )

    def start(self, request: RunRequest, selector: selectors.BaseSelector) -> ProcessRun:
        argv = self.argv_for(request)
        label = argv[2] if self.config.shell else shlex.join(argv)
        return ProcessRun(request, label, argv, selector, self.env)
