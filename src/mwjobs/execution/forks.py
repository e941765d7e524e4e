"""``mwjobs run-jobs --procs N``: the same run loop in N forked children, as runJobs.php's
``--procs`` does with MediaWiki's ForkController.

The parent forks before anything connects to a queue server (each child makes its own
connection), forwards SIGTERM and SIGINT to the children, waits for all of them and returns
0 when every child exited 0, else the status of the first child that did not (a child
killed by signal N counts as 128 + N, as in a shell). Each child dies with its parent, even
a parent killed by SIGKILL (``PR_SET_PDEATHSIG``, Linux only).

Children that print JSON documents to a shared stdout take turns through
:class:`SharedOutput`: a write to a pipe longer than ``PIPE_BUF`` (4 KiB) may interleave
with another writer's, and a document of a few dozen jobs is longer than that.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import IO

from mwjobs.daemon import STOP_SIGNALS

__all__ = ["MAX_PROCS", "Child", "SharedOutput", "die_with_parent", "fork_children"]

log = logging.getLogger(__name__)

MAX_PROCS = 1000  # runJobs.php's upper bound for --procs
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EXIT_FORK_FAILED = 1


class SharedOutput:
    """Whole writes to a descriptor shared by forked siblings, one sibling at a time.

    The lock is a POSIX record lock (``lockf``) on a file the parent opened before forking:
    such locks belong to a process, so siblings holding the same descriptor still exclude
    each other, and the kernel drops a lock whose holder dies, so a killed sibling never
    blocks the others.
    """

    def __init__(self, lock_file: IO[bytes], fd: int = 1) -> None:
        self.lock_file = lock_file  # kept here: the file closes when its object goes
        self.fd = fd

    def write(self, data: bytes) -> None:
        """Write all of ``data`` while holding the siblings' lock."""
        lock_fd = self.lock_file.fileno()
        fcntl.lockf(lock_fd, fcntl.LOCK_EX)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
        finally:
            fcntl.lockf(lock_fd, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Child:
    """What :func:`fork_children` returns in a child."""

    index: int  # 0 .. n-1, in fork order
    output: SharedOutput


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies, however it dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``); exit at once if ``parent`` is already gone. Elsewhere
    only the second part applies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        # unsigned long arguments: prctl is variadic, and a C int would leave the upper half
        # of the register undefined.
        arm = ctypes.c_ulong(signal.SIGKILL)
        if libc.prctl(ctypes.c_int(PR_SET_PDEATHSIG), arm, ctypes.c_ulong(0),
                      ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:  # fmt: skip
            error = ctypes.get_errno()
            log.warning("prctl(PR_SET_PDEATHSIG) failed (%s): this child may outlive its "
                        "parent", os.strerror(error))  # fmt: skip
    if os.getppid() != parent:  # it died before the death signal was armed
        os._exit(EXIT_FORK_FAILED)


class _Forwarder:
    """The parent's SIGTERM/SIGINT handler: pass the signal on to every live child."""

    def __init__(self, children: Mapping[int, int]) -> None:
        self.children = children

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def fork_children(n: int) -> Child | int:
    """Fork ``n`` children. In each child, return its :class:`Child`: the caller runs its
    loop and exits as it would without ``--procs``. In the parent, return the exit status
    once every child has exited."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # else every child would write the parent's buffered bytes again
    parent = os.getpid()
    lock = tempfile.TemporaryFile()  # noqa: SIM115 (open until the children are gone)
    children: dict[int, int] = {}  # pid -> index
    # Blocked while forking: a signal handled between fork() and recording the pid would
    # miss that child, and a child must not run the parent's handler before resetting it.
    # Signals that arrive meanwhile are delivered (forwarded) once all children exist.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    old_handlers = {signum: signal.signal(signum, _Forwarder(children)) for signum in STOP_SIGNALS}
    failed: OSError | None = None
    for index in range(n):
        try:
            pid = os.fork()
        except OSError as exc:
            failed = exc
            break
        if pid == 0:
            # Not the parent's forwarder: the default actions until the child's own loop
            # sets its handlers (run-jobs' stops after the current job on SIGTERM).
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            die_with_parent(parent)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            return Child(index, SharedOutput(lock))
        children[pid] = index
    if failed is not None:
        log.error("could not fork child %d of %d: %s", len(children) + 1, n, failed)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    try:
        status = _wait_for(children)
    finally:
        for signum, handler in old_handlers.items():
            if handler is not None:  # None: a handler not set from Python; leave ours
                signal.signal(signum, handler)
        lock.close()
    return EXIT_FORK_FAILED if failed is not None else status


def _wait_for(children: dict[int, int]) -> int:
    """Reap every child; 0, or the status of the first one that did not exit 0."""
    status = 0
    while children:
        try:
            pid, wait_status = os.waitpid(-1, 0)  # retried after a forwarded signal (PEP 475)
        except ChildProcessError:
            break  # nothing left to wait for
        if children.pop(pid, None) is None:
            continue
        code = os.waitstatus_to_exitcode(wait_status)
        if code < 0:
            code = 128 - code  # killed by signal -code: the shell's convention
        if code and not status:
            status = code
    return status
