"""Dispatched processes never outlive the runner, even a runner killed with SIGKILL.

The runner kills its children's process groups itself when it stops or crashes (a
``finally``), but nothing of it runs after SIGKILL or an OOM kill. For that case a small
helper process, started once, holds the read end of a pipe. The runner writes ``+<pgid>`` when
it starts a process group and ``-<pgid>`` when the group is gone. When the runner dies in any
way, the kernel closes the write end; the helper reads EOF, SIGKILLs every group still listed,
and exits.

Why not ``PR_SET_PDEATHSIG`` in a ``preexec_fn``: a ``preexec_fn`` makes ``subprocess`` fork
the whole interpreter instead of using ``vfork``, which costs 2-9 ms per spawn (measured),
more than the exit-to-spawn latency budget; and the death signal reaches only the direct
child, not what it starts in its group. The helper costs one short write per run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys

__all__ = ["GUARD_SOURCE", "ChildGuard"]

log = logging.getLogger(__name__)

# The helper's whole program: stdlib only, run with ``python -I -S`` so it starts in a few
# milliseconds and imports nothing of mwjobs. It ignores the signals a terminal or systemd
# sends to the runner's group, so it is still there to clean up after the runner.
GUARD_SOURCE = """
import os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
groups = set()
for line in sys.stdin.buffer:
    op, pgid = line[:1], line[1:].strip()
    if pgid.isdigit():
        (groups.add if op == b"+" else groups.discard)(int(pgid))
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class ChildGuard:
    """The runner's side of the helper. :meth:`watch`/:meth:`forget` never block and never
    raise: a missing helper is logged once and the runner goes on without it."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._broken = False

    @property
    def active(self) -> bool:
        return self._fd >= 0 and not self._broken

    def start(self) -> None:
        """Start the helper (once)."""
        if self._process is not None:
            return
        if not sys.executable:
            log.warning("No Python executable known: children are not guarded against a "
                        "runner killed by SIGKILL.")  # fmt: skip
            return
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", GUARD_SOURCE],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError as exc:
            log.warning("Could not start the child guard (%s); children are not guarded "
                        "against a runner killed by SIGKILL.", exc)  # fmt: skip
            return
        assert self._process.stdin is not None
        self._fd = self._process.stdin.fileno()
        os.set_blocking(self._fd, False)

    def _send(self, line: bytes) -> None:
        if not self.active:
            return
        try:
            os.write(self._fd, line)  # < PIPE_BUF: written whole or not at all
        except (BlockingIOError, BrokenPipeError, OSError) as exc:
            self._broken = True
            log.error("The child guard stopped listening (%s); children are no longer "
                      "guarded against a runner killed by SIGKILL.", exc)  # fmt: skip

    def watch(self, pgid: int) -> None:
        """A new process group the helper must kill if the runner dies."""
        self._send(b"+%d\n" % pgid)

    def forget(self, pgid: int) -> None:
        """The group is gone (reaped): the helper must not touch its number again."""
        self._send(b"-%d\n" % pgid)

    def close(self) -> None:
        """Stop the helper: it kills what is still listed (normally nothing) and exits."""
        process, self._process = self._process, None
        self._fd = -1
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
